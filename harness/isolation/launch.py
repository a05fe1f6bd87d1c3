"""Start one worker process, in the cheapest way that keeps it isolated.

- `fork` (default on a Linux CPU run): fork the worker from a warm fork server
  (`forkserver.py`), a pristine interpreter started once per harness process that has
  imported torch, torch._dynamo (after a first job that trains nothing: see there) and the
  worker's harness modules and done nothing else (no plugin code, no tensor work, no
  CUDA). Each worker is still its own process in its own session and process group,
  with its own address space, files in and out. This cuts a worker's start from about
  2.5 s (importing torch, then torch._dynamo on the first optimizer) to a fraction of a
  second; `benchmarks/worker_start.py` measures
  both. `prestart` starts the server as early as the harness can, so its imports
  overlap the harness's own. A server serves one worker at a time; `ServerPool` keeps
  as many as an executor runs workers at once (`prestart(device, jobs)`).
- `spawn` (CUDA runs, non-Linux, or `MU_BENCH_WORKER_START=spawn`): a fresh interpreter,
  `python -m mu_bench.isolation.confined JOB_FOLDER`, which confines itself before it
  imports torch. CUDA cannot be used in a child forked from a process that touched it,
  so GPU runs always take this path.

The sandbox (`sandbox`, `policy`): where the machine has bubblewrap, the fork server
runs inside it (new user, PID, network, IPC and UTS namespaces; a mount view of the
system and Python files read-only and the job folders read-write; it dies with the
harness), and so does each spawned worker (with its own job's view). Every worker then
confines itself (Landlock, seccomp, limits) before any plugin code. A server's view is
fixed when it starts: a job whose folder or import path it does not cover gets a new
server (`ServerPool.acquire` widens the pool's view and retires servers that lack it).
In the server's PID namespace pids differ from the harness's; `ForkServer` translates
them, so the runner signals and sweeps host pids as before.

Both paths carry a per-job token in their environment so `sweep` can find every
descendant that outlives the worker; forked workers also carry the server's token, since
a forked process's /proc environ is its fork server's. Both report two events with the
harness's own clock: `started_at` (the worker handed over to plugin code: a byte on a
pipe the plugin never holds) and `ended_at` (its exit), which the runner's measurements
use; neither depends on anything the worker writes in its folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import psutil

from .protocol import OUTPUT, STDERR, STDOUT

TOKEN_VAR = "MU_BENCH_WORKER_TOKEN"
START_FD_VAR = "MU_BENCH_START_FD"  # as worker.START_FD_VAR (that module imports torch)
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


def _uses_bwrap(sandbox: dict | None) -> bool:
    return sandbox is not None and "bwrap" in sandbox["mechanism"]


class _Launcher:
    """Starts processes from one thread that lives as long as the harness.

    bubblewrap's `--die-with-parent` (PR_SET_PDEATHSIG) fires when the *thread* that
    started it exits, not the process: a fork server started from a pool's short-lived
    thread, or from an executor's job thread, was killed as soon as that thread ended.
    Every bubblewrap process starts here instead."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="mu-bench-launcher", daemon=True
                )
                self._thread.start()
        done: Future[subprocess.Popen] = Future()
        self._requests.put((done, argv, kwargs))
        return done.result()

    def _serve(self) -> None:
        while True:
            done, argv, kwargs = self._requests.get()
            try:
                done.set_result(subprocess.Popen(argv, **kwargs))
            except BaseException as exc:
                done.set_exception(exc)


_launcher = _Launcher()


def _popen(argv: list[str], bwrap: bool, **kwargs) -> subprocess.Popen:
    return _launcher.popen(argv, **kwargs) if bwrap else subprocess.Popen(argv, **kwargs)


class SpawnedWorker:
    """A fresh interpreter in a new session (under bubblewrap when the sandbox has it)."""

    def __init__(self, folder: Path, env: dict[str, str], sandbox: dict | None = None):
        read_end, write_end = os.pipe()
        argv = [sys.executable, "-m", "mu_bench.isolation.confined", str(folder)]
        self.bwrap = _uses_bwrap(sandbox)
        if sandbox is None:
            argv[2] = "mu_bench.isolation.worker"
        else:
            from .confined import SANDBOX_FILE

            # The harness's import path, as a forked worker gets it: plugins it can
            # import (a folder added at run time included) are importable there.
            (folder / SANDBOX_FILE).write_text(json.dumps({**sandbox, "sys_path": sys.path}))
            if self.bwrap:
                from .sandbox import Policy, bwrap_command

                policy = Policy.from_dict(sandbox["policy"])
                view = Policy(
                    read=policy.read,
                    inputs=(*policy.inputs, str(folder / SANDBOX_FILE)),
                    write=policy.write,
                    devices=policy.devices,
                )
                argv = bwrap_command(argv, view)
        env = {**env, START_FD_VAR: str(write_end)}
        try:
            with open(folder / STDOUT, "wb") as stdout, open(folder / STDERR, "wb") as stderr:
                self._proc = _popen(
                    argv,
                    self.bwrap,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    env=env,
                    cwd=folder / OUTPUT,
                    start_new_session=True,
                    pass_fds=(write_end,),
                )
        finally:
            os.close(write_end)
        self.spawned_at = time.monotonic()
        self.pid = self._proc.pid
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._start_pipe: int | None = read_end
        self._exit = _exit_watch(self.pid)

    def _code(self) -> int | None:
        code = self._proc.poll()
        if code is not None and self.bwrap and code > 128:
            code = -(code - 128)  # bubblewrap reports a child's fatal signal as 128 + N
        return code

    def poll(self) -> int | None:
        return self.wait(0)

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once the worker has ended (None before), waiting up to `timeout`
        seconds for an event (the hand-over or the exit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self._code()
            if code is not None:
                self._read_start(0)
                if self.ended_at is None:
                    self.ended_at = time.monotonic()
                self._close()
                return code
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            watched = [fd for fd in (self._start_pipe, self._exit) if fd is not None]
            if self._exit is None:  # no pidfd here: poll the exit
                left = 0.005 if left is None else min(left, 0.005)
            ready, _, _ = select.select(watched, [], [], left)
            now = time.monotonic()
            if self._start_pipe is not None and self._start_pipe in ready:
                self._read_start(0)
            if self._exit is not None and self._exit in ready:
                self.ended_at = now
                continue
            if deadline is not None and now >= deadline:
                return None

    def _read_start(self, timeout: float) -> None:
        if self._start_pipe is None:
            return
        ready, _, _ = select.select([self._start_pipe], [], [], timeout)
        if ready:
            if os.read(self._start_pipe, 1) and self.started_at is None:
                self.started_at = time.monotonic()
            os.close(self._start_pipe)
            self._start_pipe = None

    def _close(self) -> None:
        for attr in ("_start_pipe", "_exit"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)


def _exit_watch(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux pidfd), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class ServerView:
    """What a fork server was started with: inside bubblewrap or not, and then what its
    mount view shows (read-only paths, read-write folder roots)."""

    bwrap: bool
    reads: frozenset[str] = frozenset()
    roots: frozenset[str] = frozenset()

    def covers(self, other: ServerView) -> bool:
        if self.bwrap != other.bwrap:
            return False
        if not self.bwrap:
            return True
        roots = [Path(r) for r in self.roots]
        return other.reads <= self.reads and all(
            any(Path(r) == root or root in Path(r).parents for root in roots) for r in other.roots
        )

    def union(self, other: ServerView) -> ServerView:
        return ServerView(self.bwrap, self.reads | other.reads, self.roots | other.roots)


def server_view(sandbox: dict | None, roots: tuple[Path, ...] = ()) -> ServerView:
    """The view a fork server needs for jobs whose folders lie under `roots`."""
    if not _uses_bwrap(sandbox):
        return ServerView(False)
    from .policy import reads

    return ServerView(True, frozenset(reads()), frozenset(str(r.absolute()) for r in roots))


class ForkServer:
    """The harness side of `forkserver.py`: one server, one worker at a time."""

    def __init__(self, view: ServerView | None = None):
        self.view = view or ServerView(False)
        self.token = uuid.uuid4().hex
        argv = [sys.executable, "-m", "mu_bench.isolation.forkserver"]
        if self.view.bwrap:
            from .sandbox import Policy, bwrap_command

            for root in self.view.roots:
                Path(root).mkdir(parents=True, exist_ok=True)
            argv = bwrap_command(
                argv,
                Policy(read=tuple(sorted(self.view.reads))),
                write_roots=sorted(self.view.roots),
            )
        self.proc = _popen(
            argv,
            self.view.bwrap,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=worker_env(self.token),
            text=True,
            bufsize=1,
            cwd="/",
        )
        self.pids = frozenset({self.proc.pid})
        self.host_pid = self.proc.pid  # the python server's pid as the harness sees it
        self._ready = False
        self._buffer = b""
        self._held: list[dict] = []  # events read ahead by `fork`, for `event`

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _line(self, timeout: float | None = None) -> dict | None:
        """The server's next message, or None when none came within `timeout` seconds.

        Read from the pipe's descriptor into our own buffer, never through the file
        object: its read-ahead could hold the next message ("started", or a fast worker's
        exit code) where `select` on the descriptor cannot see it, and the wait for it
        would then last until the budget (or forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ServerDied("the mu-bench fork server died")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def await_ready(self) -> None:
        if self._ready:
            return
        ns_pid = int(self._line()["ready"])
        if self.view.bwrap:  # find the server behind bubblewrap's own processes
            from .sandbox import host_pid

            host = host_pid(self.proc.pid, ns_pid)
            if host is None:
                raise ServerDied("the mu-bench fork server's pid was not found")
            self.host_pid = host
            chain = {self.proc.pid, host}  # bubblewrap, its PID namespace's init, the server
            with contextlib.suppress(psutil.Error):
                for parent in psutil.Process(host).parents():
                    if parent.pid == self.proc.pid:
                        break
                    chain.add(parent.pid)
            self.pids = frozenset(chain)
        self._ready = True

    def fork(
        self, folder: Path, env: dict[str, str], sandbox: dict | None = None, trains: bool = True
    ) -> int | None:
        """Fork a worker for `folder`; returns its pid as the harness sees it (None when
        it had already ended by the time the harness looked for it). `trains`: whether the
        job builds optimizers (see `forkserver`)."""
        self.await_ready()
        request = {"folder": str(folder), "env": env, "sys_path": list(sys.path), "trains": trains}
        if sandbox is not None:
            request["sandbox"] = sandbox
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ns_pid = int(self._line()["pid"])
        if not self.view.bwrap:
            return ns_pid
        pid = _child_host_pid(self.host_pid, ns_pid)
        if pid is None and not self._ended_already():
            raise ServerDied("the forked worker's pid was not found")
        return pid

    def _ended_already(self, timeout: float = 2.0) -> bool:
        """Whether the worker just forked has ended (its exit code is on the pipe): a
        child the pid lookup cannot find, even as a zombie, was reaped by the server, which
        then sends its code. A fast worker on a loaded machine can end before the lookup
        (eight submits at once ended a seed `crashed: pid not found` that way). The
        events read meanwhile are held for `event`."""
        deadline = time.monotonic() + timeout
        while not any("code" in e for e in self._held):
            event = self._line(max(0.0, deadline - time.monotonic()))
            if event is None:
                return False
            self._held.append(event)
        return True

    def event(self, timeout: float | None) -> dict | None:
        """The running worker's next event (`{"started": true}` or `{"code": C}`), or
        None when none came within `timeout` seconds."""
        if self._held:
            return self._held.pop(0)
        return self._line(timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self.proc.kill()  # under bubblewrap, everything in its namespaces dies with it
        self.proc.wait()


class ServerDied(RuntimeError):
    """The fork server ended (a worker outside a sandbox may kill it): the runner counts
    the job as crashed and the next job gets a new server."""


def _child_host_pid(server: int, ns_pid: int) -> int | None:
    """The host pid of the server's child whose innermost pid is `ns_pid`.

    The `children` file is a quick look, not a reliable one (the kernel documents it as
    exact only while the children are stopped; eight submits at once once ended a seed
    `crashed: the forked worker's pid was not found`): when it does not list the child,
    a full scan of the server's descendants decides, a few times over half a second."""
    from .sandbox import host_pid

    found = _listed_child(server, ns_pid)
    deadline = time.monotonic() + 0.5
    while found is None:
        found = host_pid(server, ns_pid)
        if found is not None or time.monotonic() > deadline:
            return found
        time.sleep(0.02)
    return found


def _listed_child(server: int, ns_pid: int) -> int | None:
    """The child with innermost pid `ns_pid` in the server's `children` file, if listed."""
    from .sandbox import innermost_pid

    try:
        with open(f"/proc/{server}/task/{server}/children") as fh:
            children = [int(p) for p in fh.read().split()]
    except (OSError, ValueError):
        return None
    return next((pid for pid in children if innermost_pid(pid) == ns_pid), None)


class ServerPool:
    """The process's warm fork servers: one per worker running at once, up to `size`.

    A worker takes an idle server. When none is idle and fewer than `size` exist, one
    more starts in the background once the worker has waited as long as a server takes
    to start (the pool's latest start, or longer while one is still starting; at least
    `GROW_AFTER` seconds; at once when there is none), and the worker takes whichever
    server is free first: a pool of N long jobs soon has N servers, while short jobs
    take turns on the servers there are. A server's start costs about 2.7 s of CPU
    (torch, torch._dynamo), which on a small machine the running jobs pay: a warm 8-seed
    digits submit (seeds of 0.2 s) took 10.2-10.8 s with `--jobs 2` when that started a
    second server, and 9.3 s with `--jobs 1` (`benchmarks/submit_breakdown.py --repeats
    2 --jobs N`, twice each). Waiting a start's length before paying for one is the
    ski-rental rule: a job never waits more than twice what the best choice in hindsight
    would have cost it. A fixed second of waiting was not enough: the first training job
    of a submit also waits for the server's torch._dynamo import, and on a loaded 2-core
    machine a second server then started: with one more process spinning,
    `MU_BENCH_SANDBOX=landlock benchmarks/submit_breakdown.py --repeats 5 --busy 1
    --baseline TREE` (TREE with the fixed second) gave 15.68 s against 16.85 s, CPU 0.88,
    this rule starting one server in every submit (3 Dec). `size` is 1 unless an
    executor reserves more."""

    MAX_FAILED_STARTS = 3
    GROW_AFTER = 1.0  # the least a job waits before another server starts

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._idle: list[ForkServer] = []
        self._busy = 0
        self._failed_starts = 0
        self._start_seconds = 0.0  # the latest server's start, spawn to ready
        self._starts: list[float] = []  # when each start under way began, one per start
        self.started = 0  # servers started and ready, all told
        self.size = 1
        self.view = ServerView(False)  # what servers started from now on see

    def reserve(self, n: int) -> None:
        """Allow `n` servers (one per job an executor runs at once)."""
        with self._cond:
            self.size = max(self.size, n)

    def warm(self) -> None:
        """Start a server now, unless one exists or is starting."""
        with self._cond:
            if not (self._idle or self._busy or self._starts):
                self._spawn()

    def ready(self, n: int, timeout: float | None = None, roots: tuple[Path, ...] = ()) -> bool:
        """Start servers until `n` exist and wait until `n` are idle (benchmarks and tests
        that measure a steady state); False if that took longer than `timeout`. The
        servers see this process's import path and the job folders under `roots` (the
        work root when none), as the jobs to come will ask."""
        from .policy import mechanism

        deadline = None if timeout is None else time.monotonic() + timeout
        self.widen(server_view({"mechanism": mechanism()}, roots or (_work_root(),)))
        with self._cond:
            self.size = max(self.size, n)
            while True:
                self._idle = [s for s in self._idle if s.alive]
                if len(self._idle) >= n:
                    return True
                for _ in range(n - len(self._idle) - self._busy - len(self._starts)):
                    self._spawn()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)

    def _spawn(self) -> None:  # under the condition's lock
        began = time.monotonic()
        self._starts.append(began)
        threading.Thread(
            target=self._start_one, args=(began,), name="mu-bench-forkserver", daemon=True
        ).start()

    def _start_one(self, began: float) -> None:
        server, ok = None, False
        with contextlib.suppress(OSError, ValueError, ServerDied):
            server = ForkServer(self.view)
            server.await_ready()
            ok = True
        if server is not None and not ok:
            server.close()
        with self._cond:
            self._starts.remove(began)
            if ok:
                self._start_seconds = time.monotonic() - began
                self.started += 1
            if ok and not server.view.covers(self.view):
                server.close()  # started before the view widened: waiters start another
            elif ok:
                self._idle.append(server)
                self._failed_starts = 0
            else:
                self._failed_starts += 1
            self._cond.notify_all()

    def widen(self, view: ServerView) -> None:
        """Make servers started from now on see `view` too, and close idle ones that do
        not (busy ones are closed when released)."""
        with self._cond:
            self._widen(view)

    def expect(self, view: ServerView) -> None:
        """A guess at what jobs will need, for servers started ahead of them: taken when
        the pool has no view for that mechanism yet (it never retires a wider one)."""
        with self._cond:
            if self.view.bwrap != view.bwrap:
                self._widen(view)

    def _widen(self, view: ServerView) -> None:  # under the condition's lock
        if self.view.covers(view):
            return
        self.view = self.view.union(view) if self.view.bwrap == view.bwrap else view
        for server in [s for s in self._idle if not s.view.covers(self.view)]:
            self._idle.remove(server)
            server.close()

    def acquire(self, view: ServerView | None = None) -> ForkServer:
        """An idle, live server whose view covers `view`, now the caller's until
        `release`."""
        asked = time.monotonic()
        with self._cond:
            self._widen(view or ServerView(False))
            while True:
                self._idle = [s for s in self._idle if s.alive]
                if self._idle:
                    self._busy += 1
                    return self._idle.pop()
                if self._failed_starts >= self.MAX_FAILED_STARTS and not self._starts:
                    self._failed_starts = 0
                    raise ServerDied("the mu-bench fork server died")
                servers, timeout = self._busy + len(self._starts), None
                if servers < self.size:
                    now = time.monotonic()
                    waited = now - asked
                    # a start under way has taken at least its age so far
                    ages = [now - began for began in self._starts]
                    patience = max(self.GROW_AFTER, self._start_seconds, *ages)
                    if not servers or waited >= patience:
                        self._spawn()
                    else:  # look again when it has waited long enough
                        timeout = patience - waited
                self._cond.wait(timeout)

    def release(self, server: ForkServer) -> None:
        with self._cond:
            self._busy -= 1
            if server.alive and server.view.covers(self.view):
                self._idle.append(server)
            else:
                server.close()
            self._cond.notify_all()


_pool = ServerPool()


def server_pool() -> ServerPool:
    return _pool


class ForkedWorker:
    """A child of a warm fork server; it makes itself a session leader first thing.

    Its server goes back to the pool only after `sweep` (or when the server fails): the
    sweep kills whatever carries the server's token, so the server must not have forked
    the next job yet."""

    def __init__(
        self, folder: Path, env: dict[str, str], sandbox: dict | None = None, trains: bool = True
    ):
        from .policy import job_root

        self.server = _pool.acquire(server_view(sandbox, (job_root(folder),)))
        self.server_token, self.server_pids = self.server.token, self.server.pids
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._code: int | None = None
        self.server_died = False
        self._released = False
        try:
            self.server.await_ready()  # a new server's imports are not the worker's start
            self.spawned_at = time.monotonic()
            self.pid = self.server.fork(folder, env, sandbox, trains)
            self.server_pids = self.server.pids
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Hand the server back to the pool (once)."""
        if not self._released:
            self._released = True
            _pool.release(self.server)

    def poll(self) -> int | None:
        return self.wait(0)

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once the worker has ended (None before), waiting up to `timeout`
        seconds for an event. A server that dies with its worker counts as a crash."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._code is None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event = self.server.event(left)
            except ServerDied:
                event = {"code": -signal.SIGKILL, "server_died": True}
            now = time.monotonic()
            if event is None:
                return None
            if event.get("started") and self.started_at is None:
                self.started_at = now
            if "code" in event:
                self._code = int(event["code"])
                self.ended_at = now
                self.server_died = bool(event.get("server_died"))
        return self._code


def prestart(device: str, jobs: int = 1) -> None:
    """Start a fork server now, so its imports overlap the harness's own work, and allow
    `jobs` servers (more start when that many workers run at once)."""
    if start_mode(device) == "fork":
        from .policy import mechanism

        _pool.reserve(jobs)
        _pool.expect(server_view({"mechanism": mechanism()}, (_work_root(),)))
        _pool.warm()


def _work_root() -> Path:
    from ..paths import work_root

    return work_root()


def start_worker(
    folder: Path, env: dict[str, str], device: str, sandbox: dict | None = None, trains: bool = True
) -> SpawnedWorker | ForkedWorker:
    """A worker for the job in `folder`; `trains`: False when it only imports and describes
    or checks a plugin (a fork server need not have torch._dynamo for it)."""
    if start_mode(device) == "fork":
        return ForkedWorker(folder, env, sandbox, trains)
    return SpawnedWorker(folder, env, sandbox)


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
