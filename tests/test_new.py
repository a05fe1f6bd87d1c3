"""`mu-bench new NAME`: the package it writes installs (pip builds it from its
pyproject), is listed by `mu-bench methods`, passes `mu-bench check` and submits, as
generated. Slow: pip builds the package (about 15 s here) and the checks run the method
through the real runner."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import cli


def test_bad_names_taken_names_and_an_existing_folder_are_refused(tmp_path, run_cli):
    code, _, err = run_cli("new", "My_Method", "--dir", str(tmp_path))
    assert code == 2 and "e.g. my-method" in err
    code, _, err = run_cli("new", "noop", "--dir", str(tmp_path))
    assert code == 2 and "already registered" in err
    assert not any(tmp_path.iterdir())  # nothing written
    (tmp_path / "mu-bench-fresh").mkdir()
    code, _, err = run_cli("new", "fresh", "--dir", str(tmp_path))
    assert code == 2 and "already exists" in err
    assert not any((tmp_path / "mu-bench-fresh").iterdir())


@pytest.mark.slow
def test_the_scaffold_installs_checks_and_submits(tmp_path, home):
    proc = cli("new", "scaffolded", "--dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    package = tmp_path / "mu-bench-scaffolded"
    assert (package / "pyproject.toml").is_file() and (package / "tests").is_dir()
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        + ["--target", str(site), str(package)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr
    env = {"PYTHONPATH": str(site)}
    listed = cli("methods", "scaffolded", env=env)
    assert listed.returncode == 0 and "scaffolded" in listed.stdout, listed.stderr
    checked = cli("check", "scaffolded", "--json", env=env)
    doc = json.loads(checked.stdout)
    assert checked.returncode == 0 and doc["ok"], doc
    assert doc["counts"]["fail"] == 0 and doc["counts"]["pass"] >= 8
    sub = cli("submit", "scaffolded", "-s", "digits-tiny", "-n", "2", "--json", env=env)
    assert sub.returncode == 0, sub.stderr
    report = json.loads(sub.stdout)
    assert report["status"] == "ok" and report["method"] == "scaffolded"
