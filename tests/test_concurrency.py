"""Two submits at once into one store both land."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import cli_json


@pytest.mark.slow
def test_two_concurrent_submits_both_land(tmp_path):
    db = tmp_path / "shared" / "mlflow.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mu_bench",
                "submit",
                m,
                "--seeds",
                "1",
                "--tracking-uri",
                uri,
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for m in ("noop", "finetune")
    ]
    docs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        docs.append(json.loads(out))
    board = cli_json("leaderboard", "digits-random10", "--tracking-uri", uri)
    assert {r["run_id"] for r in board["digits-random10"]} == {d["run_id"] for d in docs}
