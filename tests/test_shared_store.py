"""A team's shared store and a cluster, for real (slow): PostgreSQL, an MLflow server on
it, `mu-bench server`, concurrent submits, and a Dask cluster of separate processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mu_bench.leaderboard import store

from .conftest import cli_json
from .services import ProcessWatch, scratch
from .test_idempotency import check_find_submission, key, report

pytestmark = pytest.mark.slow


def _board_ids(uri: str, scenario: str = "digits-random10") -> list[str]:
    """Every submission's run id on `scenario`'s board, through `mu-bench leaderboard`."""
    board = cli_json("leaderboard", "--all", "--tracking-uri", uri)
    return [r["run_id"] for r in board.get(scenario, [])]


def test_submit_and_leaderboard_through_a_postgres_backed_server(mlflow_postgres, postgres_db):
    import psycopg

    doc = cli_json("submit", "finetune", "--seeds", "2", "--tracking-uri", mlflow_postgres.url)
    assert doc["status"] == "ok" and len(doc["seeds"]) == 2
    assert doc["run_id"] in _board_ids(mlflow_postgres.url)
    # The run is in PostgreSQL's tables, and its report in the server's artifact root.
    with psycopg.connect(postgres_db.uri_with_password.replace("+psycopg", "")) as conn:
        rows = conn.execute("SELECT status FROM runs WHERE run_uuid = %s", (doc["run_id"],))
        assert rows.fetchall() == [("FINISHED",)]
    assert list(Path(mlflow_postgres.artifacts).rglob(f"{doc['run_id']}/**/report.json"))


def test_find_submission_through_a_postgres_backed_server(mlflow_postgres):
    check_find_submission(mlflow_postgres.url)


def _concurrent_submits(uri: str, n: int) -> list[str]:
    """`n` real `mu-bench submit noop --seeds 2` at once into `uri`; their run ids. Each
    runs one job at a time (`--jobs 1`): the race is on the store, and n submits with a
    pool of fork servers per core each would swamp a small machine."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mu_bench", "submit", "noop", "--seeds", "2", "--jobs", "1"]
            + ["--tracking-uri", uri, "--no-figures", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    ids = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=900)
            assert p.returncode == 0, err[-3000:]
            doc = json.loads(out)
            assert doc["status"] == "ok", [(s.get("status"), s.get("error")) for s in doc["seeds"]]
            ids.append(doc["run_id"])
    finally:  # a failure leaves no submit running
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return ids


@pytest.mark.timeout(1200)  # eight interpreters importing torch at once: minutes on 2 cores
@pytest.mark.parametrize("backend", ["postgres-server", "sqlite"])
def test_eight_concurrent_submits_all_land(backend, request, tmp_path):
    cli_json("prepare", "digits-random10")  # the submits race on the store only
    if backend == "sqlite":
        uri = f"sqlite:///{tmp_path / 'board.db'}"
    else:
        uri = request.getfixturevalue("mlflow_postgres").url
    before = set(_board_ids(uri))
    ids = _concurrent_submits(uri, 8)
    assert len(set(ids)) == 8
    after = _board_ids(uri)
    assert len(after) == len(set(after))  # no run twice
    assert set(after) - before == set(ids)


def test_mu_bench_server_on_a_private_postgres_stops_everything_and_keeps_the_board(tmp_path):
    folder = scratch("mu-bench-server-")
    folder.chmod(0o755)  # PostgreSQL's user passes through to folder/pg
    watch = ProcessWatch()
    k = key()
    try:
        for start in range(2):  # the second start reuses the initialised folder
            proc = subprocess.Popen(
                [sys.executable, "-m", "mu_bench", "server", "--postgres-dir", str(folder / "pg")]
                + ["--port", str(_free_port())],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                url = proc.stdout.readline().strip()  # printed once the server answers
                assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
                with urllib.request.urlopen(url + "/health", timeout=5) as resp:
                    assert resp.status == 200
                watch.add(proc.pid, _postmaster(folder / "pg"))
                if start == 0:
                    assert store.find_submission(url, "digits-random10", k) is None
                    run_id = store.record(report(), url, key=k).run_id
                else:
                    assert store.find_submission(url, "digits-random10", k) == run_id
                assert (folder / "pg" / "artifacts").is_dir()
                watch.add(proc.pid, _postmaster(folder / "pg"))
            finally:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=60) == 0, proc.stderr.read()
            watch.assert_none_left()
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _postmaster(data_parent) -> int:
    return int((data_parent / "data" / "postmaster.pid").read_text().split()[0])


def _free_port() -> int:
    from mu_bench.leaderboard.server import free_port

    return free_port()


def test_dask_cluster_runs_tasks_on_worker_processes_and_survives_a_killed_worker(
    dask_two_workers, tmp_path
):
    cluster = dask_two_workers
    marker = tmp_path / "started"

    def where() -> tuple[str, int]:
        from distributed import get_worker

        return get_worker().name, os.getpid()

    def slow_once() -> tuple[str, int]:
        from distributed import get_worker

        if not marker.exists():  # the first try: signal, then run until killed
            marker.write_text(str(os.getpid()))
            time.sleep(120)
        return get_worker().name, os.getpid()

    with cluster.client() as client:
        names = {}
        for name in cluster.names:
            got, pid = client.submit(where, pure=False, workers=[name]).result(timeout=60)
            assert got == name
            assert pid != os.getpid()
            assert pid in cluster.worker_pids(cluster.names.index(name))
            names[name] = pid
        assert len(set(names.values())) == 2

        future = client.submit(slow_once, pure=False, workers=["w0"], allow_other_workers=True)
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.1)
        assert int(marker.read_text()) == names["w0"]
        cluster.kill_worker(0)  # mid-task: the scheduler reruns it on w1
        got, pid = future.result(timeout=120)
        assert (got, pid) == ("w1", names["w1"])
        assert len(client.scheduler_info()["workers"]) == 1
