"""`mu-bench submit`'s store writer: `store.record` in a process of its own, started with
the submission, so that MLflow's import and the store's start-up overlap the seeds.

Why a process and not a thread: importing MLflow costs about 2.5 s of CPU (pandas,
SQLAlchemy, its GenAI modules); in a thread of the harness it holds the GIL while the
seeds run, and its objects make the harness's heap larger. The writer imports MLflow
at once and then serves one JSON line at a time on its stdin, answering on its stdout:

    harness -> writer  {"settings": URI}  the store's settings, read (`store.settings`):
    writer -> harness  {"settings": {...}}  or  {"error": {...}}   asked only where no
                                          sandbox confines the workers: whether the
                                          store requires one decides if the submit runs
    harness -> writer  {"open": URI}      the submission is known good: open the store
                                          (SQLite: created on first use), as before
    harness -> writer  {"record": REPORT, "key": KEY}    `asdict(report)`, tracebacks
                                          included; the harness draws the figures now
    harness -> writer  {"figures": {NAME: PATH}}         once they are drawn
    writer -> harness  {"run_id": ID, "timings": {...}}  or  {"error": {...}}

It writes nothing before "open", records at most once, and leaves when its stdin closes
(the harness is gone, or ended without recording). The report it logs is
`Report.from_dict(REPORT)` with the run id, so `report.json` is the document `--json`
prints. Everything but the figures is logged while the harness draws them (two
processes, two cores: the record's 0.4-0.5 s on digits no longer follows the drawing's
0.6 s); a harness that ends before sending them leaves no record (`store.record`
deletes it). A failure to open the store or to record reaches the harness with its
type, message and the writer's traceback (a `MuBenchError` keeps its exit code).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mu_bench.submission.report import Report


class StoreWriteFailed(RuntimeError):
    """Recording failed in the store writer; the message carries its traceback."""


class Recorder:
    """The harness's side: start the writer now, open the store later, record once."""

    def __init__(self, urgent: bool = False) -> None:
        """`urgent`: the harness will wait on the writer before anything runs (for the
        store's settings), so the writer does not yield its CPU to it (no `nice`)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mu_bench.leaderboard.recorder", *(["--urgent"] * urgent)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.timings: dict[str, float] = {}
        self.opened = False
        self._report: Report | None = None  # the one `begin` sent

    def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(BrokenPipeError):  # it has ended: the missing answer says how
            self.proc.stdin.write(json.dumps(message, default=str) + "\n")
            self.proc.stdin.flush()

    def settings(self, uri: str) -> dict[str, str]:
        """The settings of the store at `uri`, read by the writer, so that the harness
        never imports MLflow (about 2.5 s of CPU) to learn them; raises what reading
        them raised."""
        self._send({"settings": uri})
        return self._answer("reading the store's settings")["settings"]

    def _answer(self, doing: str) -> dict[str, Any]:
        """The writer's next answer; raises what it reports, or that it ended before."""
        line = self.proc.stdout.readline()
        if not line:
            self.close()  # it is ending: nothing to wait for on our side
            code = self.proc.wait()
            raise StoreWriteFailed(
                f"the store writer ended (exit code {code}) before {doing}; its messages, "
                "if any, are above"
            )
        answer = json.loads(line)
        if "error" in answer:
            _raise(answer["error"])
        return answer

    def open(self, uri: str) -> None:
        """Start opening the store at `uri` (a failure surfaces at `record`)."""
        self.opened = True
        self._send({"open": uri})

    def abandon(self) -> None:
        """The submission ends without a record: stop the writer. Before `open` it has
        written nothing and is killed; after, it may be creating the store's schema, so
        it is let go and ends once that is done."""
        if not self.opened and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def begin(self, report: Report, key: str | None = None) -> None:
        """Start `store.record(report, uri, key=key)` in the writer; `finish` hands it the
        figures, drawn meanwhile, and returns what it recorded."""
        self._send({"record": asdict(report)} | ({"key": key} if key is not None else {}))
        self._report = report

    def finish(self, figures: dict[str, Path] | None = None) -> Report:
        """The figures for the record `begin` started: the report with its run id,
        exactly as logged."""
        self._send({"figures": {k: str(v) for k, v in (figures or {}).items()}})
        try:
            answer = self._answer("recording the submission")
        finally:
            self.close()
        self.timings = answer.get("timings", {})
        return replace(self._report, run_id=answer["run_id"])

    def close(self) -> None:
        """Let the writer go (it ends on its closed stdin), recording or not."""
        if self.proc.stdin and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()


def _raise(error: dict[str, Any]) -> None:
    from mu_bench.errors import MuBenchError, UsageError

    if error.get("exit_code") is not None:  # a MuBenchError: same message and exit code
        exc = (UsageError if error["exit_code"] == 2 else MuBenchError)(error["message"])
        exc.exit_code = error["exit_code"]
        raise exc
    raise StoreWriteFailed(
        f"{error['type']}: {error['message']}\n--- the store writer's traceback ---\n"
        f"{error['traceback']}"
    )


def _describe(exc: BaseException) -> dict[str, Any]:
    import traceback

    from mu_bench.errors import MuBenchError

    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "exit_code": exc.exit_code if isinstance(exc, MuBenchError) else None,
    }


def _figures() -> dict[str, Path]:
    """The figures the harness sends once drawn (`store.record` asks when the rest of the
    record is logged)."""
    line = sys.stdin.readline()
    if not line:
        raise RuntimeError("the harness ended before sending the figures")
    return {k: Path(v) for k, v in json.loads(line)["figures"].items()}


def serve() -> None:
    """The writer's main loop (see the module docstring)."""
    import gc
    import logging

    gc.disable()  # a short life: no collection is worth its time here
    # Nothing waits on this process until "record", and then the harness is idle: on a
    # small machine its imports and the store's opening (CPU, mostly imports) yield to
    # the harness's start-up and the seeds instead of sharing the cores with them.
    if "--urgent" not in sys.argv[1:]:  # the harness waits on it at once: no yielding
        with contextlib.suppress(AttributeError, OSError):  # no os.nice (Windows), or refused
            os.nice(10)
    clock = {"started": time.time()}
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever MLflow prints goes to stderr; stdout carries only replies
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    from mlflow.tracking import MlflowClient  # noqa: F401  (the seconds this process is for)

    from mu_bench.leaderboard import store
    from mu_bench.submission.report import Report

    # After the import, which sets MLflow's own levels: its INFO lines (the schema being
    # created) would only interleave with the harness's progress.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)

    clock["imported"] = time.time()

    def reply(answer: dict[str, Any]) -> None:
        with contextlib.suppress(BrokenPipeError):  # the harness is gone: nobody asks
            replies.write(json.dumps(answer) + "\n")
            replies.flush()

    uri, failure = None, None
    while line := sys.stdin.readline():  # not the file's iterator: `_figures` reads too
        message = json.loads(line)
        if "settings" in message:  # a read: nothing is created or written
            try:
                reply({"settings": store.settings(message["settings"])})
            except BaseException as exc:
                reply({"error": _describe(exc)})
        elif "open" in message:
            uri = message["open"]
            try:
                store.client(uri)
            except BaseException as exc:  # reported when asked to record
                failure = exc
            clock["opened"] = time.time()
        elif "record" in message:
            clock["asked"] = time.time()
            try:
                if failure is not None:
                    raise failure
                if uri is None:
                    raise RuntimeError("asked to record before the store was opened")
                report = Report.from_dict(message["record"])
                report = store.record(report, uri, figures=_figures, key=message.get("key"))
                clock["recorded"] = time.time()
                answer: dict[str, Any] = {"run_id": report.run_id, "timings": clock}
            except BaseException as exc:
                answer = {"error": _describe(exc)}
            reply(answer)
            break
    sys.stderr.flush()
    os._exit(0)  # every write is committed; skip the interpreter's shutdown


if __name__ == "__main__":
    serve()
