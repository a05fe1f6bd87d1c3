"""Real services for the slow tests, on 127.0.0.1 with free ports, in scratch folders:
a private PostgreSQL, an MLflow server (on it, or on SQLite) with an artifact root, and a
Dask scheduler with N workers as separate processes. Each is a context manager that
stops everything it started on exit and asserts that no process of it is left; the
pytest fixtures at the end wrap them (tests/conftest.py imports the fixtures).

    with postgres() as pg, mlflow_server(tmp, pg) as srv:      # srv.url: --tracking-uri
        ...
    with dask_cluster(tmp, workers=2) as cluster:                 # cluster.address
        with cluster.client() as client:
            client.submit(f).result()
        cluster.kill_worker(0)                                    # SIGKILL, mid-run

Costs on a busy 2-core machine (benchmarks/services_startup.py): PostgreSQL 3.3 s
(initdb without fsync, start, database), the MLflow server about 20 s to its first
answer (0.5 GB), the Dask cluster 3.6 s (0.3 GB); stopping each takes about a second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from mu_bench.leaderboard.server import (
    MlflowServer,
    Postgres,
    free_port,
    start_mlflow,
    start_postgres,
)

DASK = str(Path(sys.executable).with_name("dask"))


class ProcessWatch:
    """Remembers processes (psutil remembers their start times, so a reused pid is not
    mistaken for one of them) and asserts at the end that none is still running."""

    def __init__(self) -> None:
        self.seen: dict[int, psutil.Process] = {}

    def add(self, *pids: int, children: bool = True) -> None:
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                procs = [proc, *(proc.children(recursive=True) if children else [])]
            except psutil.NoSuchProcess:
                continue
            for p in procs:
                self.seen.setdefault(p.pid, p)

    def left(self, seconds: float = 10) -> list[str]:
        """The remembered processes still running after up to `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            alive = []
            for p in self.seen.values():
                with contextlib.suppress(psutil.NoSuchProcess):
                    if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                        alive.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def assert_none_left(self) -> None:
        alive = self.left()
        assert not alive, f"processes left running: {alive}"


def scratch(prefix: str) -> Path:
    """A folder under the system temp dir: PostgreSQL's user can reach it there, unlike
    pytest's tmp_path (under a root-only /tmp/pytest-of-root when root)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


# --------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def postgres(folder: Path | None = None) -> Iterator[Postgres]:
    """A private PostgreSQL on 127.0.0.1 (as the postgres user when root) with database
    `mlflow`, in `folder` (new or empty; default a scratch folder, removed at exit);
    `pg.uri_with_password` is MLflow's backend URI. Stopped at exit."""
    own = folder is None
    folder = folder or scratch("mu-bench-pg-")
    watch = ProcessWatch()
    pg = start_postgres(folder, sync=False)
    try:
        watch.add(pg.pid)
        yield pg
    finally:
        watch.add(pg.pid)  # and the backends MLflow opened meanwhile
        pg.stop()
        watch.assert_none_left()
        if own:
            shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- MLflow server


@contextlib.contextmanager
def mlflow_server(folder: Path, backend: Postgres | str | None = None) -> Iterator[MlflowServer]:
    """A real `mlflow server` (light settings, one worker) on 127.0.0.1 on `backend`: a
    running Postgres, a URI, or None for SQLite in `folder`; artifacts in
    `folder/artifacts`, its log in `folder/mlflow.log`. `server.url` is the tracking URI."""
    folder.mkdir(parents=True, exist_ok=True)
    if backend is None:
        uri, shown = f"sqlite:///{folder / 'mlflow.db'}", None
    elif isinstance(backend, Postgres):
        uri, shown = backend.uri_with_password, backend.uri
    else:
        uri, shown = backend, None
    watch = ProcessWatch()
    server = start_mlflow(
        uri, str(folder / "artifacts"), log=folder / "mlflow.log", printable_backend=shown
    )
    try:
        watch.add(server.proc.pid)
        yield server
    finally:
        watch.add(server.proc.pid)
        server.stop()
        watch.assert_none_left()


# --------------------------------------------------------------------------- Dask


@dataclass
class DaskCluster:
    """A `dask scheduler` and `dask worker`s, each a process group of its own."""

    address: str  # tcp://127.0.0.1:PORT, what a Client (or `--executor dask://`) takes
    folder: Path
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    watch: ProcessWatch = field(default_factory=ProcessWatch)

    def client(self, timeout: float = 60):
        """A distributed.Client on the cluster (a context manager), once every live worker
        has joined."""
        from distributed import Client

        c = Client(self.address, timeout=timeout)
        c.wait_for_workers(sum(p.poll() is None for p in self.workers), timeout=timeout)
        return c

    def worker_pids(self, i: int) -> list[int]:
        """Worker i's processes now: the `dask worker` (nanny) process and the worker
        process it runs tasks in."""
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(self.workers[i].pid)
            return [root.pid, *(p.pid for p in root.children(recursive=True))]
        return []

    def kill_worker(self, i: int, *, machine: bool = True) -> None:
        """SIGKILL worker i: by default its whole process group, nanny included, as if
        its machine died (it never comes back); `machine=False` kills only the process
        that runs tasks, and the nanny starts a new one."""
        self.watch.add(self.workers[i].pid)
        if machine:
            os.killpg(self.workers[i].pid, signal.SIGKILL)
            self.workers[i].wait(timeout=30)
            return
        pids = self.worker_pids(i)[1:]
        assert pids, f"worker {i} has no task process"
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pids(self) -> list[int]:
        out = []
        for p in (self.scheduler, *self.workers):
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(p.pid)
                out += [root.pid, *(c.pid for c in root.children(recursive=True))]
        return out

    def stop(self, timeout: float = 30) -> None:
        """Workers first (SIGTERM: the nanny stops its worker), then the scheduler; SIGKILL
        to a process group that outlives `timeout`."""
        self.watch.add(*(p.pid for p in (self.scheduler, *self.workers)))
        for p in (*self.workers, self.scheduler):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in (*self.workers, self.scheduler):
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "ab") as sink:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


@contextlib.contextmanager
def dask_cluster(
    folder: Path, workers: int = 2, threads: int = 1, env: dict[str, str] | None = None
) -> Iterator[DaskCluster]:
    """A Dask scheduler and `workers` workers (one process of `threads` threads each, under
    a nanny) on 127.0.0.1, no dashboards; logs and worker folders in `folder`. `env` adds
    to the processes' environment (this process's, e.g. MU_BENCH_CACHE)."""
    folder.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _spawn(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        folder / "scheduler.log",
        full_env,
    )
    cluster = DaskCluster(address, folder, scheduler)
    try:
        for i in range(workers):
            name = f"w{i}"
            cmd = [DASK, "worker", address, "--name", name, "--host", "127.0.0.1"]
            cmd += ["--nworkers", "1", "--nthreads", str(threads), "--no-dashboard"]
            cmd += ["--local-directory", str(folder / name), "--death-timeout", "30"]
            cluster.workers.append(_spawn(cmd, folder / f"{name}.log", full_env))
            cluster.names.append(name)
        with cluster.client():  # every worker has joined
            pass
        cluster.watch.add(*cluster.pids())
        yield cluster
    except BaseException:
        for log in sorted(folder.glob("*.log")):
            sys.stderr.write(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        cluster.watch.add(*cluster.pids())
        cluster.stop()
        cluster.watch.assert_none_left()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def postgres_db() -> Iterator[Postgres]:
    """A private PostgreSQL for the module."""
    with postgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def mlflow_postgres(postgres_db, tmp_path_factory) -> Iterator[MlflowServer]:
    """An MLflow server on `postgres_db` for the module; `.url` is the tracking URI."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow-pg"), postgres_db) as server:
        yield server


@pytest.fixture
def mlflow_sqlite(tmp_path) -> Iterator[MlflowServer]:
    """An MLflow server on SQLite in tmp_path; `.url` is the tracking URI."""
    with mlflow_server(tmp_path / "mlflow-server") as server:
        yield server


@pytest.fixture
def dask_two_workers(tmp_path) -> Iterator[DaskCluster]:
    """A Dask scheduler and two workers, as separate processes on 127.0.0.1."""
    with dask_cluster(tmp_path / "dask", workers=2) as cluster:
        yield cluster
