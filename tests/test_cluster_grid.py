"""A team's setup for real (slow): a grid run through a Dask scheduler and two Dask
workers, each a separate process on 127.0.0.1, recording into an MLflow server on a
private PostgreSQL, while one Dask worker is killed in the middle of a job. The job is
retried on the other worker; the board ends complete, without duplicates, and every
process of the cluster, the server and the database is stopped (the fixtures check)."""

from __future__ import annotations

import json
import os
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

pytestmark = pytest.mark.slow

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


def test_grid_through_a_dask_cluster_survives_a_killed_worker(mlflow_postgres, tmp_path):
    uri = mlflow_postgres.url
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    plugins = plugin_path("gridprobe")
    # The workers' cache is not this machine's: every input travels with its jobs.
    env = {"PYTHONPATH": plugins, "MU_BENCH_CACHE": str(tmp_path / "worker-cache")}
    with dask_cluster(tmp_path / "dask", workers=2, env=env) as cluster:
        url = "dask://" + cluster.address[len("tcp://") :]
        proc = subprocess.Popen(
            [sys.executable, "-m", "mu_bench", "grid", str(grid), "--executor", url]
            + ["--tracking-uri", uri, "--no-figures", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": plugins},
        )
        try:
            deadline = time.monotonic() + 600
            while _sleeping_job(cluster.worker_pids(0)) is None:
                assert proc.poll() is None, proc.stderr.read()[-3000:]
                assert time.monotonic() < deadline, "no job ever ran on worker 0"
                time.sleep(0.1)
            cluster.kill_worker(0)  # the whole worker, mid-job, as if its machine died
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
