"""The typer application, its shared options and console helpers.

Exit codes: 0 the harness ran (even if a seed failed; the statuses say so), 1 a check
failed, 2 bad usage or input (the message names the valid choices), 3 internal error.
Status lines go to stderr (the stages' `mu_bench` log records too); `--json` prints
exactly one JSON document on stdout. Heavy imports (torch, mlflow) happen inside the
commands that need them, so `mu-bench methods` and `mu-bench scenarios` answer in well
under a second.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(
    help="mu-bench: benchmark and leaderboard for machine unlearning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
err = Console(stderr=True, highlight=False)
# Tables keep their columns when piped (CI logs, `make run | tee`): 160 wide off a terminal.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

# typer needs Optional[...] (not X | None) to run on Python 3.10.
ScenarioOpt = Annotated[
    str, typer.Option("--scenario", "-s", help="Built-in scenario name or path to a .toml file.")
]
TrackingOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else SQLite in ./mu-bench-runs).",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
DataRootOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--data-root",
        help="Folder of downloaded datasets (default: $MU_BENCH_DATA, else ./mu-bench-runs/data).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")]
# A method's seeds and hyperparameters: `submit`, and `prepare --method`.
SeedsOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--seeds", "-n", help="Number of seeds (default: the scenario's)."),
]
ParamOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--param", "-p", help="Hyperparameter name=value (repeatable)."),
]
BudgetOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--budget", "-b", help="Seconds per unlearn() call, or N% of retrain time."),
]
NoPresetOpt = Annotated[
    bool, typer.Option("--no-preset", help="Use the paper defaults, not the dataset preset.")
]
# Where the jobs run: `submit`, `grid` and `prepare`.
JobsOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--jobs",
        "-j",
        help="Jobs at once on this machine (default: $MU_BENCH_JOBS, else one per core; "
        "one per GPU on CUDA).",
    ),
]
ExecutorOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--executor",
        help="Where jobs run: local, or dask://HOST:PORT for a Dask cluster "
        "(default: $MU_BENCH_EXECUTOR, else local).",
    ),
]


def emit_json(doc) -> None:
    sys.stdout.write(json.dumps(doc, indent=1, default=str) + "\n")


def say(message: str) -> None:
    err.print(message, markup=False, style="dim")


class _SayHandler(logging.Handler):
    """The stages' progress records (`mu_bench` logger), as status lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        say(record.getMessage())


def show_progress() -> None:
    logger = logging.getLogger("mu_bench")
    if not any(isinstance(h, _SayHandler) for h in logger.handlers):
        logger.addHandler(_SayHandler())
    logger.setLevel(logging.INFO)


def use_data_root(data_root: str | None) -> None:
    """`--data-root` wins over `$MU_BENCH_DATA` for this process (`paths.data_root`)."""
    if data_root:
        from pathlib import Path

        from ..paths import DATA_ENV

        os.environ[DATA_ENV] = str(Path(data_root).expanduser().absolute())
