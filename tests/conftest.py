"""Shared fixtures: every test gets its own mu-bench home (store, work dirs) and working
directory; the prepared-artifact cache is shared by the whole session, so each scenario's
original and gold models are trained once per test run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Real services for the slow tests (PostgreSQL, MLflow server, Dask cluster)
from .services import dask_two_workers, mlflow_postgres, mlflow_sqlite, postgres_db  # noqa: F401

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache for the run; with pytest-xdist (`make test` runs two processes) one for
    all its processes, beside their own temporary folders: the cache's file locks let
    one process prepare a scenario while the other waits for it and reuses it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "cache"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session", autouse=True)
def session_home(tmp_path_factory, shared_cache):
    """The same environment for module-scoped fixtures, which run before `home`: without
    it they would prepare into (and write to) ./mu-bench-runs of the working directory."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MU_BENCH_HOME", str(tmp_path_factory.mktemp("session-home")))
    mp.setenv("MU_BENCH_CACHE", str(shared_cache))
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, shared_cache) -> Path:
    monkeypatch.setenv("MU_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MU_BENCH_CACHE", str(shared_cache))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def plugin_path(*names: str) -> str:
    """A PYTHONPATH that adds the named test plugin folders (each with its dist-info)."""
    parts = [str(PLUGINS / n) for n in names]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def cli(*args: str, plugins: tuple[str, ...] = (), env: dict | None = None, timeout: int = 600):
    """Run the real `mu-bench` command in a fresh interpreter."""
    full_env = dict(os.environ)
    if plugins:
        full_env["PYTHONPATH"] = plugin_path(*plugins)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mu_bench", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def cli_json(*args: str, **kwargs):
    proc = cli(*args, "--json", **kwargs)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def run_cli(capsys):
    """Run `mu-bench ARGS` in this process (no interpreter start: seconds saved per call
    on a busy machine); returns (exit code, stdout, stderr)."""
    from mu_bench.cli.main import run as run_command  # `main` would end the process

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        argv = sys.argv
        sys.argv = ["mu-bench", *args]
        try:
            code = run_command()
        finally:
            sys.argv = argv
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
