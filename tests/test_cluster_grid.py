"""A team's setup for real (slow): a grid run through a Dask scheduler and two Dask
workers, each a separate process on 127.0.0.1, recording into an MLflow server on a
private PostgreSQL, while one Dask worker is killed in the middle of a job. The job is
retried on the other worker; the board ends complete, without duplicates, and every
process of the cluster, the server and the database is stopped (the fixtures check).
A job whose worker dies on both its attempts is recorded `crashed`, once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from mu_bench.leaderboard import ranking, store

from .conftest import plugin_path
from .services import dask_cluster

# A cold cache prepares both scenarios through the cluster first: minutes on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

GRID = """
scenarios = ["digits-random10", "digits-class3"]
seeds = 2

[methods]
noop = {}
probe-sleep = {seconds = 4}
"""


def _sleeping_job(pids: list[int]) -> int | None:
    """A `probe-sleep` worker process among `pids`' descendants (its job folder's request
    names the method), or None."""
    for pid in pids:
        try:
            procs = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            try:
                request = Path(proc.cwd()).parent / "request.json"
                doc = json.loads(request.read_text())
            except (psutil.Error, OSError, ValueError):
                continue
            if doc.get("method", {}).get("name") == "probe-sleep":
                return proc.pid
    return None


def _grid_on(cluster, grid: Path, uri: str, plugins: str) -> subprocess.Popen:
    """`mu-bench grid` through the cluster's scheduler, into `uri`, as a child process."""
    url = "dask://" + cluster.address[len("tcp://") :]
    return subprocess.Popen(
        [sys.executable, "-m", "mu_bench", "grid", str(grid), "--executor", url]
        + ["--tracking-uri", uri, "--no-figures", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": plugins},
    )


def test_grid_through_a_dask_cluster_survives_a_killed_worker(mlflow_postgres, tmp_path):
    uri = mlflow_postgres.url
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    plugins = plugin_path("gridprobe")
    # The workers' cache is not this machine's: every input travels with its jobs.
    env = {"PYTHONPATH": plugins, "MU_BENCH_CACHE": str(tmp_path / "worker-cache")}
    with dask_cluster(tmp_path / "dask", workers=2, env=env) as cluster:
        proc = _grid_on(cluster, grid, uri, plugins)
        try:
            deadline = time.monotonic() + 600
            while _sleeping_job(cluster.worker_pids(0)) is None:
                assert proc.poll() is None, proc.stderr.read()[-3000:]
                assert time.monotonic() < deadline, "no job ever ran on worker 0"
                time.sleep(0.1)
            _kill_machine(cluster, 0)  # the whole worker, mid-job, as if its machine died
            out, err = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err[-3000:]
    cells = json.loads(out)["cells"]
    # every seed ok: the killed job ran again on the other worker
    assert {(c["state"], c["status"], c["seeds"]) for c in cells} == {("recorded", "ok", "2/2")}
    for scenario in ("digits-random10", "digits-class3"):
        runs = ranking.load(uri, scenario)
        mine = runs[runs["run_id"].isin([c["run_id"] for c in cells])]
        assert sorted(mine["tags.mu_bench.method"]) == ["noop", "probe-sleep"]
        keys = Counter(mine[f"tags.{store.KEY_TAG}"])
        assert set(keys.values()) == {1}  # no duplicates


GRID_TWICE = """
scenarios = ["digits-random10"]
seeds = 1

[methods]
noop = {}
probe-sleep = {seconds = 8}
"""


def _wait_for_sleeper(cluster, proc, skip: set[int]) -> int:
    """The index of the Dask worker running a `probe-sleep` job not in `skip` (by pid)."""
    deadline = time.monotonic() + 600
    while True:
        for i in range(len(cluster.workers)):
            if cluster.workers[i].poll() is None:
                pid = _sleeping_job(cluster.worker_pids(i))
                if pid is not None and pid not in skip:
                    skip.add(pid)
                    return i
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no probe-sleep job ran"
        time.sleep(0.1)


def _kill_machine(cluster, i: int) -> None:
    """SIGKILL every process of Dask worker i, the job's own session included (a job
    runs in a process group of its own, which killing the worker's group would miss)."""
    pids = cluster.worker_pids(i)
    cluster.kill_worker(i)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_job_whose_worker_dies_twice_is_recorded_crashed_once(mlflow_postgres, tmp_path):
    uri = mlflow_postgres.url
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID_TWICE)
    plugins = plugin_path("gridprobe")
    env = {"PYTHONPATH": plugins, "MU_BENCH_CACHE": str(tmp_path / "worker-cache")}
    with dask_cluster(tmp_path / "dask", workers=3, env=env) as cluster:
        proc = _grid_on(cluster, grid, uri, plugins)
        try:
            seen: set[int] = set()
            first = _wait_for_sleeper(cluster, proc, seen)
            _kill_machine(cluster, first)
            second = _wait_for_sleeper(cluster, proc, seen)  # its retry, elsewhere
            assert second != first
            _kill_machine(cluster, second)  # dies again: no third attempt
            out, err = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err[-3000:]
    cells = {c["method"]: c for c in json.loads(out)["cells"]}
    assert {m: (c["state"], c["status"], c["seeds"]) for m, c in cells.items()} == {
        "noop": ("recorded", "ok", "1/1"),
        "probe-sleep seconds=8": ("recorded", "crashed", "0/1"),
    }
    runs = ranking.load(uri, "digits-random10")
    mine = runs[runs["run_id"].isin([c["run_id"] for c in cells.values()])]
    assert len(mine) == 2 and mine[f"tags.{store.KEY_TAG}"].nunique() == 2  # once each
    crashed = store.client(uri).get_run(cells["probe-sleep seconds=8"]["run_id"])
    assert crashed.data.tags["mu_bench.status"] == "crashed"


def _input_holders(cluster) -> set[int] | None:
    """The workers (by index) holding the scattered inputs (`bytes-` keys), once Dask's
    active memory manager has left a single copy of each; None before that."""
    with cluster.client() as c:
        names = {addr: w["name"] for addr, w in c.scheduler_info()["workers"].items()}
        holders = {k: v for k, v in c.who_has().items() if str(k).startswith("bytes-")}
    if not holders or any(len(v) != 1 for v in holders.values()):
        return None
    return {cluster.names.index(names[addr]) for addrs in holders.values() for addr in addrs}


GRID_INPUTS = """
scenarios = ["digits-random10"]
seeds = 1

[methods]
probe-sleep = {seconds = 7}
"""


def test_a_job_whose_inputs_died_with_their_worker_runs_again(mlflow_postgres, tmp_path):
    """A worker dies holding the only copy of a running job's scattered inputs (Dask keeps
    one copy of data no waiting task needs, broadcast or not): the task is cancelled for
    lost data, and the job must be scattered again and retried, not recorded crashed
    (the grid once ended `crashed 0/1` after one death, the resubmission cancelled too)."""
    uri = mlflow_postgres.url
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID_INPUTS)
    plugins = plugin_path("gridprobe")
    env = {"PYTHONPATH": plugins, "MU_BENCH_CACHE": str(tmp_path / "worker-cache")}
    with dask_cluster(tmp_path / "dask", workers=3, env=env) as cluster:
        proc = _grid_on(cluster, grid, uri, plugins)
        try:
            running = _wait_for_sleeper(cluster, proc, set())
            deadline = time.monotonic() + 30
            while (holders := _input_holders(cluster)) is None:
                assert time.monotonic() < deadline, "the inputs kept more than one copy"
                time.sleep(0.2)
            doomed = holders | {running}
            assert len(doomed) < len(cluster.workers), "no worker would be left"
            for i in sorted(doomed):
                _kill_machine(cluster, i)
            out, err = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err[-3000:]
    cells = {c["method"]: c for c in json.loads(out)["cells"]}
    assert {m: (c["state"], c["status"], c["seeds"]) for m, c in cells.items()} == {
        "probe-sleep seconds=7": ("recorded", "ok", "1/1"),
    }, err[-3000:]
