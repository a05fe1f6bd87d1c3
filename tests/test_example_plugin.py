"""A third-party plugin package (examples/) installs and runs like a built-in."""

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import cli_json

EXAMPLE = Path(__file__).parent.parent / "examples" / "mu-bench-example-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
    )
    return {"PYTHONPATH": str(target)}


def test_example_plugin_is_listed_with_its_distribution(installed):
    rows = {r["name"]: r for r in cli_json("methods", env=installed)}
    row = rows["example-head-reset"]
    assert row["distribution"] == "mu-bench-example-plugin" and row["version"] == "0.1.0"
    assert "last linear layer" in row["summary"]


def test_example_plugin_submits_and_forgets_a_class(installed):
    doc = cli_json(
        "submit", "example-head-reset", "-s", "digits-class3", "--seeds", "1", env=installed
    )
    assert doc["status"] == "ok" and doc["distribution"] == "mu-bench-example-plugin"
    assert doc["metrics"]["forget_acc"] <= 0.1
    assert doc["metrics"]["retain_acc"] >= 0.95
    board = cli_json("leaderboard", "digits-class3", env=installed)
    assert board["digits-class3"][0]["method"] == "example-head-reset"
