"""Start one worker process, in the cheapest way that keeps it isolated.

- `fork` (default on a Linux CPU run): fork the worker from a warm fork server
  (`forkserver.py`), a pristine interpreter started once per harness process that has
  imported torch, torch._dynamo and the worker's harness modules and done nothing else
  (no plugin code, no tensor work, no CUDA). Each worker is still its own process in its
  own session and process group, with its own address space, files in and out. This
  cuts a worker's start from about 2.5 s (importing torch, then torch._dynamo on the
  first optimizer) to a fraction of a second; `benchmarks/worker_start.py` measures
  both. `prestart` starts the server as early as the harness can, so its imports
  overlap the harness's own. A server serves one worker at a time; `ServerPool` keeps
  as many as an executor runs workers at once (`prestart(device, jobs)`).
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
import time
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
        self.ready = False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self) -> bool:
        """Block until the server has done its imports; False if it died first."""
        if not self.ready:
            self.ready = bool(self.proc.stdout.readline())
        return self.ready

    def fork(self, folder: Path, env: dict[str, str]) -> int:
        if not self.wait_ready():
            raise RuntimeError("the mu-bench fork server died")
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


class ServerPool:
    """The process's warm fork servers: one per worker running at once, up to `size`.

    A worker takes an idle server. When none is idle and fewer than `size` exist, one
    more starts in the background and the worker takes whichever server is free first,
    so a short job never waits for a new server's torch import, and a pool of N long
    jobs soon has N servers. `size` is 1 unless an executor reserves more."""

    MAX_FAILED_STARTS = 3

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._idle: list[ForkServer] = []
        self._busy = 0
        self._starting = 0
        self._failed_starts = 0
        self.size = 1

    def reserve(self, n: int) -> None:
        """Allow `n` servers (one per job an executor runs at once)."""
        with self._cond:
            self.size = max(self.size, n)

    def warm(self) -> None:
        """Start a server now, unless one exists or is starting."""
        with self._cond:
            if not (self._idle or self._busy or self._starting):
                self._spawn()

    def ready(self, n: int, timeout: float | None = None) -> bool:
        """Start servers until `n` exist and wait until `n` are idle (benchmarks and tests
        that measure a steady state); False if that took longer than `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self.size = max(self.size, n)
            while True:
                self._idle = [s for s in self._idle if s.alive]
                if len(self._idle) >= n:
                    return True
                for _ in range(n - len(self._idle) - self._busy - self._starting):
                    self._spawn()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)

    def _spawn(self) -> None:  # under the condition's lock
        self._starting += 1
        threading.Thread(target=self._start_one, name="mu-bench-forkserver", daemon=True).start()

    def _start_one(self) -> None:
        server = None
        with contextlib.suppress(OSError):
            server = ForkServer()
        ok = server is not None and server.wait_ready()
        with self._cond:
            self._starting -= 1
            if ok:
                self._idle.append(server)
                self._failed_starts = 0
            else:
                self._failed_starts += 1
            self._cond.notify_all()

    def acquire(self) -> ForkServer:
        """An idle, live server, now the caller's until `release`."""
        with self._cond:
            while True:
                self._idle = [s for s in self._idle if s.alive]
                if self._idle:
                    self._busy += 1
                    return self._idle.pop()
                if self._failed_starts >= self.MAX_FAILED_STARTS and not self._starting:
                    self._failed_starts = 0
                    raise RuntimeError("the mu-bench fork server died")
                if self._busy + self._starting < self.size:
                    self._spawn()
                self._cond.wait()

    def release(self, server: ForkServer) -> None:
        with self._cond:
            self._busy -= 1
            if server.alive:
                self._idle.append(server)
            self._cond.notify_all()


_pool = ServerPool()


def server_pool() -> ServerPool:
    return _pool


class ForkedWorker:
    """A child of a warm fork server; it makes itself a session leader first thing.

    Its server goes back to the pool only after `sweep` (or when the server fails): the
    sweep kills whatever carries the server's token, so the server must not have forked
    the next job yet."""

    def __init__(self, folder: Path, env: dict[str, str]):
        self.server = _pool.acquire()
        self.server_token, self.server_pids = self.server.token, self.server.pids
        self._released = False
        try:
            self.pid = self.server.fork(folder, env)
        except BaseException:
            self.release()
            raise
        self._code: int | None = None

    def release(self) -> None:
        """Hand the server back to the pool (once)."""
        if not self._released:
            self._released = True
            _pool.release(self.server)

    def poll(self) -> int | None:
        return self.wait(0)

    def wait(self, timeout: float | None = None) -> int | None:
        if self._code is None:
            try:
                self._code = self.server.exit_code(timeout)
            except BaseException:
                self.release()
                raise
        return self._code


def prestart(device: str, jobs: int = 1) -> None:
    """Start a fork server now, so its imports overlap the harness's own work, and allow
    `jobs` servers (more start when that many workers run at once)."""
    if start_mode(device) == "fork":
        _pool.reserve(jobs)
        _pool.warm()


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
    if isinstance(worker, ForkedWorker):
        worker.release()  # only now may its server fork the next job
    return killed
