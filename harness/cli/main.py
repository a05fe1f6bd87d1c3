"""`main`: the `mu-bench` entry point. Registers every command on the app (importing
their modules) and maps errors to exit codes."""

from __future__ import annotations

import os
import sys
import traceback

from ..errors import MuBenchError
from . import board, download, grid, listing, prepare, server, submit, tune  # noqa: F401  (registers)
from .app import app, err


def main() -> None:
    import logging

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app()  # standalone: click/typer handle usage errors (exit 2) and sys.exit themselves
    except MuBenchError as exc:
        err.print(f"error: {exc}", markup=False, style="bold red", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        err.print("internal error (please report it):", style="bold red")
        err.print(traceback.format_exc(), markup=False)
        sys.exit(3)


__all__ = ["app", "main"]
