"""Start one worker process, in the cheapest way that keeps it isolated.

- `fork` (default on a Linux CPU run): fork the worker from a warm fork server
  (`forkserver.py`), a pristine interpreter started once per harness process that has
  imported torch, torch._dynamo and the worker's harness modules and done nothing else
  (no plugin code, no tensor work, no CUDA). Each worker is still its own process in its
  own session and process group, with its own address space, files in and out. This
  cuts a worker's start from about 2.5 s (importing torch, then torch._dynamo on the
  first optimizer) to a fraction of a second; `benchmarks/worker_start.py` measures
  both. `prestart` starts the server as early as the harness can, so its imports
  overlap the harness's own.
- `spawn` (CUDA runs, non-Linux, or `MU_BENCH_WORKER_START=spawn`): a fresh interpreter,
  `python -m mu_bench.isolation.worker JOB_FOLDER`. CUDA cannot be used in a child
  forked from a process that touched it, so GPU runs always take this path.

Both carry a per-job token in their environment so `sweep` can find every descendant
that outlives the worker; forked workers also carry the server's token, since a forked
process's /proc environ is its fork server's.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psutil

from .protocol import OUTPUT, STDERR, STDOUT

TOKEN_VAR = "MU_BENCH_WORKER_TOKEN"
# Never hand a worker the store's location or the harness's own settings.
SCRUBBED_ENV = (
    "MLFLOW_TRACKING_URI",
    "MU_BENCH_HOME",
    "MU_BENCH_CACHE",
    "MU_BENCH_WORK",
    "MU_BENCH_DATA",  # where the test set's files are
)


def worker_env(token: str) -> dict[str, str]:
    """The harness's environment without its own settings, plus the sweep token."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env[TOKEN_VAR] = token
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_mode(device: str) -> str:
    mode = os.environ.get("MU_BENCH_WORKER_START", "auto")
    if mode in ("fork", "spawn"):
        return mode
    return "fork" if sys.platform == "linux" and not device.startswith("cuda") else "spawn"


class SpawnedWorker:
    """A fresh interpreter in a new session."""

    def __init__(self, folder: Path, env: dict[str, str]):
        with open(folder / STDOUT, "wb") as stdout, open(folder / STDERR, "wb") as stderr:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "mu_bench.isolation.worker", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=folder / OUTPUT,
                start_new_session=True,
            )
        self.pid = self._proc.pid

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


class ForkServer:
    """The harness side of `forkserver.py`: one server, one worker at a time."""

    def __init__(self):
        self.token = uuid.uuid4().hex
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mu_bench.isolation.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=worker_env(self.token),
            text=True,
            bufsize=1,
        )
        self.pids = frozenset({self.proc.pid})
        self.lock = threading.Lock()  # one worker at a time per server

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self, folder: Path, env: dict[str, str]) -> int:
        request = {"folder": str(folder), "env": env, "sys_path": list(sys.path)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError("the mu-bench fork server died")
        return int(json.loads(reply)["pid"])

    def exit_code(self, timeout: float | None) -> int | None:
        """The running worker's exit code, once it has ended (None before)."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError("the mu-bench fork server died")
        return int(json.loads(reply)["code"])


_server: ForkServer | None = None
_server_lock = threading.Lock()


def fork_server() -> ForkServer:
    """The process's fork server, started (or restarted) on demand."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive:
            _server = ForkServer()
        return _server


class ForkedWorker:
    """A child of the warm fork server; it makes itself a session leader first thing."""

    def __init__(self, folder: Path, env: dict[str, str]):
        self.server = fork_server()
        self.server.lock.acquire()
        self.server_token, self.server_pids = self.server.token, self.server.pids
        try:
            self.pid = self.server.fork(folder, env)
        except BaseException:
            self.server.lock.release()
            raise
        self._code: int | None = None

    def poll(self) -> int | None:
        return self.wait(0)

    def wait(self, timeout: float | None = None) -> int | None:
        if self._code is None:
            self._code = self.server.exit_code(timeout)
            if self._code is not None:
                self.server.lock.release()
        return self._code


def prestart(device: str) -> None:
    """Start the fork server now, so its imports overlap the harness's own work."""
    if start_mode(device) == "fork":
        fork_server()


def start_worker(folder: Path, env: dict[str, str], device: str) -> SpawnedWorker | ForkedWorker:
    if start_mode(device) == "fork":
        return ForkedWorker(folder, env)
    return SpawnedWorker(folder, env)


def _carrying(token: str):
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if proc.environ().get(TOKEN_VAR) == token:
                yield proc


def sweep(worker: SpawnedWorker | ForkedWorker, token: str) -> int:
    """SIGKILL every process left over from `worker`; returns how many."""
    spare = {os.getpid()}
    tokens = {token}
    if isinstance(worker, ForkedWorker):
        tokens.add(worker.server_token)
        spare |= worker.server_pids
    killed = 0
    for t in tokens:
        for proc in _carrying(t):
            if proc.pid in spare:
                continue
            with contextlib.suppress(psutil.Error, OSError):
                proc.kill()
                killed += 1
    return killed
