"""Executors past one job at a time: the local pool (`--jobs`), prepare's models as jobs,
and the Dask executor on an in-process cluster (the real, multi-process cluster is in
test_shared_store.py, slow). Each gives the same results as one job at a time."""

from __future__ import annotations

import contextlib
import shutil

import pytest
import torch

from mu_bench.cache import Cache
from mu_bench.errors import UsageError
from mu_bench.isolation.executor import for_prepare, make_executor
from mu_bench.isolation.launch import server_pool
from mu_bench.isolation.pool import LocalPool, threads_per_job
from mu_bench.submission.evaluate import evaluate
from mu_bench.submission.execute import execute
from mu_bench.submission.plan import plan
from mu_bench.submission.prepare import prepare

from .conftest import PLUGINS

TIMING = ("seconds", "speedup")  # metrics that measure the clock, not the result


def _results(report) -> tuple[dict, list[dict]]:
    def keep(metrics: dict) -> dict:
        return {k: v for k, v in metrics.items() if not any(t in k for t in TIMING)}

    return keep(report.metrics), [keep(s.metrics) for s in report.seeds]


def _submit(sub, executor, tmp_path, name: str):
    art = prepare(sub.scenario, "cpu")
    work = tmp_path / name
    try:
        return evaluate(sub, art, execute(sub, art, "cpu", work, executor), "cpu").report
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def by_jobs(tmp_path_factory) -> dict:
    """One submission (reading both sets) run with `--jobs 1` and with `--jobs 2`."""
    sub = plan("neggrad-plus", "digits-class3", seeds=3)
    work = tmp_path_factory.mktemp("by-jobs")
    return {n: _submit(sub, LocalPool(n), work, f"jobs-{n}") for n in (1, 2)}


def test_jobs_2_gives_the_same_metrics_as_jobs_1(by_jobs):
    one, two = by_jobs[1], by_jobs[2]
    assert one.status == two.status == "ok"
    assert _results(two) == _results(one)
    assert "forget_quality" in one.metrics  # a metric over all seeds at once, too


def test_pool_runs_jobs_at_once_each_with_its_threads(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS / "gridprobe"))
    sub = plan("probe-sleep", "digits-random10", seeds=2, params={"seconds": "2"})
    # both servers warm, seeing the plugin and the job folders: measure the pool itself
    assert server_pool().ready(2, timeout=300, roots=(tmp_path,))
    report = _submit(sub, LocalPool(2), tmp_path, "pool")
    assert report.status == "ok", [s.error for s in report.seeds]
    started = sorted(s.metrics["method.started_at"] for s in report.seeds)
    # the second began while the first slept: two processes at once. (Their pids may be
    # equal: under bubblewrap each fork server numbers its children in its own PID
    # namespace.)
    assert started[1] - started[0] < 1.5
    assert {s.metrics["method.threads"] for s in report.seeds} == {threads_per_job("cpu")}


def test_threads_per_job_come_from_the_environment_else_the_cores(monkeypatch):
    monkeypatch.setenv("MU_BENCH_THREADS", "3")
    assert threads_per_job("cpu") == 3
    monkeypatch.delenv("MU_BENCH_THREADS")
    assert threads_per_job("cpu") == 1  # one job per core by default, one thread each


def test_make_executor_reads_flags_then_environment_and_rejects_bad_input(monkeypatch):
    assert make_executor(None, 3, "cpu").capacity == 3
    monkeypatch.setenv("MU_BENCH_JOBS", "2")
    pool = make_executor(None, None, "cpu")
    assert isinstance(pool, LocalPool) and pool.capacity == 2
    assert for_prepare(pool) is pool and for_prepare(LocalPool(1)) is None
    monkeypatch.setenv("MU_BENCH_JOBS", "many")
    with pytest.raises(UsageError, match="MU_BENCH_JOBS"):
        make_executor(None, None, "cpu")
    for url, jobs, match in [
        ("local", 0, "at least 1"),
        ("ray://x:1", None, "dask://HOST:PORT"),
        ("dask://127.0.0.1", None, "dask://HOST:PORT"),
        ("dask://127.0.0.1:1", 2, "--jobs sets the local pool"),
        ("dask://127.0.0.1:1", None, "no Dask scheduler answers"),
    ]:
        with pytest.raises(UsageError, match=match):
            make_executor(url, jobs, "cpu")


def _small_prepare(executor, cache_dir):
    """Three of a scenario's models (the original and two gold) into a cache of their own."""
    from mu_bench.scenario import load

    scenario = load("digits-random10")
    return prepare(
        scenario,
        "cpu",
        gold_seeds=2,
        ceiling=False,
        in_models=0,
        cache=Cache(cache_dir),
        executor=executor,
    )


@pytest.fixture(scope="module")
def models_here(tmp_path_factory):
    """The three models trained in this process, as `prepare` does without an executor."""
    return _small_prepare(None, tmp_path_factory.mktemp("in-process"))


def _same_models(a, b) -> None:
    assert [(m.role, m.index) for m in a.models] == [(m.role, m.index) for m in b.models]
    for x, y in zip(a.models, b.models, strict=True):
        wx = torch.load(x.weights, weights_only=True)
        wy = torch.load(y.weights, weights_only=True)
        assert all(torch.equal(wx[k].cpu(), wy[k].cpu()) for k in wx), (x.role, x.index)
        assert torch.equal(x.outputs.test, y.outputs.test)


def test_prepare_trains_its_models_as_jobs_and_gets_the_same_models(models_here, tmp_path):
    jobs = _small_prepare(LocalPool(2), tmp_path / "jobs")
    assert not any(m.cache_hit for m in jobs.models)
    _same_models(models_here, jobs)
    assert jobs.retrain_seconds > 0
    again = _small_prepare(LocalPool(2), tmp_path / "jobs")
    assert all(m.cache_hit for m in again.models)


@contextlib.contextmanager
def _in_process_cluster():
    """A Dask scheduler and two single-threaded workers in this process (over TCP on
    127.0.0.1): the executor's whole path (tasks, inputs, attempt counters, outputs)
    without separate processes."""
    from distributed import LocalCluster

    from mu_bench.isolation.dask_executor import DaskExecutor

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        executor = DaskExecutor.connect("dask://" + cluster.scheduler_address[len("tcp://") :])
        try:
            yield executor
        finally:
            executor.close()


@pytest.mark.slow
def test_dask_executor_gives_the_same_results_as_the_local_pool(
    by_jobs, models_here, tmp_path, monkeypatch
):
    from mu_bench.isolation.dask_executor import DaskExecutor

    sub = plan("neggrad-plus", "digits-class3", seeds=3)
    with _in_process_cluster() as dask:
        assert dask.capacity == 2
        assert dask._shared_cache()  # the workers see this process's cache: inputs by path
        shared = _submit(sub, dask, tmp_path, "shared")
        assert shared.status == "ok", [s.error for s in shared.seeds]
        assert _results(shared) == _results(by_jobs[1])
        # every input travelling with its jobs (scattered once), prepare's models too
        monkeypatch.setattr(DaskExecutor, "_shared_cache", lambda self: False)
        carried = _submit(sub, dask, tmp_path, "carried")
        assert _results(carried) == _results(by_jobs[1])
        _same_models(_small_prepare(dask, tmp_path / "dask-cache"), models_here)


def test_a_fork_servers_messages_sent_together_are_all_seen_at_once():
    """A fast worker's "started" and exit code can reach the harness in one read: the
    second must be seen without waiting for more output (a file object's read-ahead
    hid it from `select`, and a grid waited on a worker that had already ended)."""
    import subprocess
    import sys
    import time

    from mu_bench.isolation.launch import ForkServer

    talk = (
        'import sys, time; sys.stdout.write(\'{"ready": 1}\\n{"pid": 7}\\n'
        '{"pid": 7, "started": true}\\n{"pid": 7, "code": 0}\\n\'); '
        "sys.stdout.flush(); time.sleep(30)"
    )
    server = object.__new__(ForkServer)
    server.proc = subprocess.Popen(
        [sys.executable, "-c", talk], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    server._buffer, server._held = b"", []
    try:
        assert server._line() == {"ready": 1}
        assert server._line() == {"pid": 7}
        clock = time.monotonic()
        assert server.event(5) == {"pid": 7, "started": True}
        assert server.event(5) == {"pid": 7, "code": 0}
        assert time.monotonic() - clock < 2  # seen at once, not after the 5 s timeouts
        assert server.event(0.2) is None  # and nothing more
    finally:
        server.proc.kill()
        server.proc.wait()


def _fake_server(talk: str):
    """A `ForkServer` over a stand-in process that prints `talk` (its messages) once."""
    import subprocess
    import sys

    from mu_bench.isolation.launch import ForkServer, ServerView

    server = object.__new__(ForkServer)
    script = f"import sys, time; sys.stdout.write({talk!r}); sys.stdout.flush(); time.sleep(30)"
    server.proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    server._buffer, server._held, server._ready = b"", [], True
    server.view = ServerView(True)
    server.host_pid = server.proc.pid  # it has no children: the pid lookup finds nothing
    return server


def test_a_worker_that_ended_before_its_pid_was_looked_up_is_not_a_crash(tmp_path):
    """Under load a fast worker can end (and be reaped) before the harness looks up its
    host pid: its exit code, already sent, says how it ended (it was `crashed: the
    forked worker's pid was not found`); without an exit code it stays a crash."""
    from mu_bench.isolation.launch import ServerDied

    ended = '{"pid": 7}\n{"pid": 7, "started": true}\n{"pid": 7, "code": 0}\n'
    server = _fake_server(ended)
    try:
        assert server.fork(tmp_path, {}) is None
        assert server.event(5) == {"pid": 7, "started": True}
        assert server.event(5) == {"pid": 7, "code": 0}
        assert server.event(0.2) is None
    finally:
        server.close()
    server = _fake_server('{"pid": 7}\n{"pid": 7, "started": true}\n')
    try:
        with pytest.raises(ServerDied, match="pid was not found"):
            server.fork(tmp_path, {})
    finally:
        server.close()


class _FakeServer:
    """Stands in for a fork server in `ServerPool`'s bookkeeping (no process)."""

    started = 0
    start_seconds = 0.0  # how long each takes to become ready
    born: list[float] = []  # when each was made (time.monotonic)

    def __init__(self, view=None):
        import time

        type(self).started += 1
        type(self).born.append(time.monotonic())
        self.view = view
        self.alive = True

    def await_ready(self) -> None:
        import time

        time.sleep(self.start_seconds)

    def close(self) -> None:
        self.alive = False


def _pool_of_two(monkeypatch, start_seconds: float = 0.0):
    import mu_bench.isolation.launch as launch

    monkeypatch.setattr(launch, "ForkServer", _FakeServer)
    monkeypatch.setattr(_FakeServer, "start_seconds", start_seconds)
    _FakeServer.started = 0
    monkeypatch.setattr(_FakeServer, "born", [])
    pool = launch.ServerPool()
    pool.reserve(2)
    pool.warm()
    first = pool.acquire()
    return pool, first


@pytest.mark.parametrize(("held", "servers"), [(0.3, 1), (2.0, 2)])
def test_a_second_server_starts_only_for_a_job_that_waits(monkeypatch, held, servers):
    """Short jobs take turns on the one warm server (another's start costs seconds of
    CPU that they would pay); a job kept waiting `GROW_AFTER` seconds gets a new one."""
    import threading
    import time

    pool, first = _pool_of_two(monkeypatch)
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire()))
    waiter.start()
    time.sleep(held)
    pool.release(first)
    waiter.join(10)
    assert got and _FakeServer.started == servers
    assert (got[0] is first) == (servers == 1)


@pytest.mark.parametrize(("held", "servers"), [(1.5, 1), (3.5, 2)])
def test_a_job_waits_as_long_as_a_server_takes_to_start_before_another_starts(
    monkeypatch, held, servers
):
    """Where a server takes longer to start than `GROW_AFTER` (torch's import on a loaded
    machine, here 2.5 s), no second server starts while the first is still starting, and
    a job kept waiting starts one only after that long: the busy server freed after 1.5 s
    serves it alone; freed after 3.5 s, a second one has been starting since 2.5 s."""
    import threading
    import time

    pool, first = _pool_of_two(monkeypatch, start_seconds=2.5)
    assert _FakeServer.started == 1
    got = []
    asked = time.monotonic()
    waiter = threading.Thread(target=lambda: got.append(pool.acquire()))
    waiter.start()
    time.sleep(held)
    pool.release(first)
    waiter.join(10)
    assert got and got[0] is first
    assert _FakeServer.started == servers
    if servers == 2:  # not before the waiter had waited a whole start
        assert _FakeServer.born[1] - asked >= 2.5


def test_a_seed_forks_from_a_server_that_imported_torch_dynamo_while_describing(monkeypatch):
    """A fresh fork server answers plan's description of the method (a job that trains
    nothing) before importing torch._dynamo, imports it on a thread while that job runs,
    and the seed's worker inherits it frozen, with the collector on: no worker imports it
    again (about 1 s of CPU each)."""
    import mu_bench.isolation.launch as launch
    from mu_bench.submission.pipeline import run

    monkeypatch.syspath_prepend(str(PLUGINS / "probes"))
    monkeypatch.setenv("MU_BENCH_WORKER_START", "fork")
    pool = launch.ServerPool()
    monkeypatch.setattr(launch, "_pool", pool)
    try:
        report = run(plan("probe-worker-start", "digits-class3", seeds=1), "cpu").report
    finally:
        for server in pool._idle:
            server.close()
    assert report.status == "ok", report.seeds[0].error
    reported = report.seeds[0].metrics
    assert reported["method.compiler_inherited"] == 1.0
    assert reported["method.api_inherited"] == 1.0  # harness code, not on the method's clock
    assert reported["method.gc_enabled"] == 1.0
    assert reported["method.frozen_objects"] > 100_000
