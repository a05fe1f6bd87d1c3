"""`main`: the `mu-bench` entry point. Registers every command on the app (importing
their modules), maps errors to exit codes, and ends the process at once when the
command is done (`fast_exit`)."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

from ..errors import MuBenchError
from . import board, download, grid, listing, prepare, server, submit, tune  # noqa: F401  (registers)
from .app import app, err


def _code(exc: SystemExit) -> int:
    """The exit status `sys.exit(exc.code)` would give."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def fast_exit(code: int) -> None:
    """Flush and leave without the interpreter's shutdown. After a submit that shutdown
    is mostly a final garbage collection over every object torch, scikit-learn and the
    rest created (about 2 s on two CPU cores). Nothing mu-bench writes waits for it:
    every file, store write and child process is finished or closed by the time a
    command returns, and a fork server ends when its pipe closes with this process."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (`| head`): nothing more can be said.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main() -> None:
    import logging

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app()  # standalone: click/typer handle usage errors (exit 2) and sys.exit themselves
        code = 0
    except SystemExit as exc:
        code = _code(exc)
    except MuBenchError as exc:
        err.print(f"error: {exc}", markup=False, style="bold red", soft_wrap=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except Exception:
        err.print("internal error (please report it):", style="bold red")
        err.print(traceback.format_exc(), markup=False)
        code = 3
    fast_exit(code)


__all__ = ["app", "fast_exit", "main"]
