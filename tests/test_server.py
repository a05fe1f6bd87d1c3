"""A shared MLflow server as the store, and `mu-bench ui` over the embedded one."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import cli_json


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server exited"
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_submit_to_a_shared_mlflow_server(server, home):
    doc = cli_json("submit", "noop", "--seeds", "1", "--tracking-uri", server)
    assert doc["status"] == "ok"
    board = cli_json("leaderboard", "--tracking-uri", server)
    assert board["digits-random10"][0]["run_id"] == doc["run_id"]
    assert not (home / "mlflow.db").exists()  # nothing went to the embedded store


@pytest.mark.slow
def test_ui_serves_the_embedded_store(home):
    cli_json("submit", "noop", "--seeds", "1")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mu_bench", "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
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
