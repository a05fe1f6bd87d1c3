"""Where mu-bench keeps its files: `$MU_BENCH_HOME`, default `./mu-bench-runs`.

mu-bench-runs/mlflow.db    the embedded default leaderboard store (SQLite)
mu-bench-runs/artifacts/   MLflow artifacts of that store
mu-bench-runs/cache/       prepared scenario artifacts (original and gold models)
mu-bench-runs/work/        per-submission scratch directories of the workers
mu-bench-runs/data/        downloaded datasets (CIFAR); `$MU_BENCH_DATA` or `--data-root`
                           point elsewhere, e.g. at an existing torchvision data folder
"""

import os
from pathlib import Path

DATA_ENV = "MU_BENCH_DATA"


def home() -> Path:
    return Path(os.environ.get("MU_BENCH_HOME", "mu-bench-runs")).absolute()


def cache_root() -> Path:
    return Path(os.environ.get("MU_BENCH_CACHE", home() / "cache")).absolute()


def data_root() -> Path:
    """Where downloaded datasets live: `$MU_BENCH_DATA`, default `$MU_BENCH_HOME/data`."""
    return Path(os.environ.get(DATA_ENV, home() / "data")).expanduser().absolute()


def work_root() -> Path:
    import tempfile

    return Path(os.environ.get("MU_BENCH_WORK", Path(tempfile.gettempdir()) / "mu-bench-work"))
