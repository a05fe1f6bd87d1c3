"""Where mu-bench keeps its files: `$MU_BENCH_HOME`, default `./mu-bench-runs`.

mu-bench-runs/mlflow.db    the embedded default leaderboard store (SQLite)
mu-bench-runs/artifacts/   MLflow artifacts of that store
mu-bench-runs/cache/       prepared scenario artifacts (original and gold models)
mu-bench-runs/work/        per-submission scratch directories of the workers
"""

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("MU_BENCH_HOME", "mu-bench-runs")).absolute()


def cache_root() -> Path:
    return Path(os.environ.get("MU_BENCH_CACHE", home() / "cache")).absolute()


def work_root() -> Path:
    import tempfile

    return Path(os.environ.get("MU_BENCH_WORK", Path(tempfile.gettempdir()) / "mu-bench-work"))
