"""A shared MLflow server as the store, and `mu-bench ui` over the embedded one."""

import os
import subprocess
import sys
import urllib.request

import pytest

from mu_bench.leaderboard.server import free_port, wait_healthy

from .conftest import cli_json


@pytest.mark.slow
def test_submit_to_a_shared_mlflow_server(mlflow_sqlite, home):
    doc = cli_json("submit", "noop", "--seeds", "1", "--tracking-uri", mlflow_sqlite.url)
    assert doc["status"] == "ok"
    board = cli_json("leaderboard", "--tracking-uri", mlflow_sqlite.url)
    assert board["digits-random10"][0]["run_id"] == doc["run_id"]
    assert not (home / "mlflow.db").exists()  # nothing went to the embedded store


@pytest.mark.slow
def test_ui_serves_the_embedded_store(home):
    cli_json("submit", "noop", "--seeds", "1")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mu_bench", "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, 90)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search",
            data=b'{"max_results": 10}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert b"mu-bench/digits-random10" in resp.read()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
