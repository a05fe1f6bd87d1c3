"""Run one job in an isolated worker process under a hard time budget.

After automlbenchmark: a fresh process in its own process group (see `launch`), files in
and out, an escalating kill, a status for every outcome. `run_job` lays out the job's
folder (`request.json`, the input files linked under `inputs/`, an empty `output/`),
starts the worker and watches it. The budget clock starts when the worker signals it is
about to make the timed call (`output/started`); at budget + grace the whole group gets
SIGTERM, then SIGKILL after `term_grace`; finally every process still carrying the
job's token in its environment (a detached grandchild that left the group, say) is
killed. Output goes to log files, not pipes, so a stray child holding them open cannot
hang the harness.

Statuses: ok, timeout, error (exception; message and traceback kept), crashed (killed
by a signal or exited without a result) and invalid (a malformed result, or a call that
returned something that is not a module; the harness's weight check adds more).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

from ..cache import link_or_copy
from .launch import start_worker, sweep, worker_env
from .protocol import (
    OUTPUT,
    REQUEST,
    RESULT,
    STARTED,
    STDERR,
    Job,
    Outcome,
    ProtocolError,
    WorkerResult,
)

MAX_RESULT_BYTES = 1 << 20  # a result.json larger than this is malformed


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _kill_group(pid: int, sig: int) -> None:
    """Signal the worker's process group (it leads its own session), and the worker itself
    in case it has not yet become a session leader."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, sig)


def lay_out(job: Job, folder: Path) -> None:
    """The job's folder: its request, its inputs (files linked, folders copied: a
    folder is the method's to change), and an empty output folder."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / OUTPUT).mkdir(parents=True)
    for name, source in job.files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            link_or_copy(source, target)
    (folder / REQUEST).write_text(json.dumps(job.request.to_json(), indent=1))


def read_result(folder: Path) -> WorkerResult | str | None:
    """The worker's result; a string saying why it is malformed; None when there is none."""
    path = folder / OUTPUT / RESULT
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            return f"result.json is over {MAX_RESULT_BYTES} bytes"
        return WorkerResult.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ProtocolError) as exc:
        return f"malformed result.json: {exc}"


def run_job(job: Job, folder: Path) -> Outcome:
    """Run `job` in `folder` on this machine and classify how it ended."""
    lay_out(job, folder)
    limits = job.limits
    token = uuid.uuid4().hex
    proc = start_worker(folder, worker_env(token), job.request.device)
    spawned = time.monotonic()
    started: float | None = None
    killed_for: str | None = None
    started_file = folder / OUTPUT / STARTED
    while proc.poll() is None:
        now = time.monotonic()
        if started is None and started_file.exists():
            started = now
        limit = (started + limits.budget + limits.grace) if started else spawned + limits.startup
        if now >= limit:
            killed_for = "budget" if started else "startup"
            _kill_group(proc.pid, signal.SIGTERM)
            if proc.wait(limits.term_grace) is None:
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            break
        time.sleep(limits.poll)
    if started is None and started_file.exists():
        started = spawned  # finished between two polls; the worker's own timing is exact
    end = time.monotonic()
    _kill_group(proc.pid, signal.SIGKILL)  # anything left in the group
    leftovers = sweep(proc, token)
    common = dict(
        key=job.key,
        seed=job.request.seed,
        folder=folder,
        wall_seconds=end - started if started is not None else None,
        startup_seconds=started - spawned if started is not None else None,
        stderr_tail=_tail(folder / STDERR),
        leftovers_killed=leftovers,
    )
    result = read_result(folder)
    if isinstance(result, str):
        return Outcome(status="invalid", error=result, **common)
    if result is not None:
        if result.status == "ok" and result.seconds is not None and result.seconds > limits.budget:
            return Outcome(
                status="timeout",
                seconds=result.seconds,
                error=f"the call took {result.seconds:.2f} s, over the {limits.budget:g} s budget",
                reported=result.metrics,  # what it says it did (retrain: epochs done)
                **common,
            )
        return Outcome(
            status=result.status,
            seconds=result.seconds,
            error=result.error,
            traceback=result.traceback,
            reported=result.metrics,
            **common,
        )
    if killed_for == "budget":
        error = f"killed after the {limits.budget:g} s budget (+{limits.grace:g} s grace)"
        return Outcome(status="timeout", error=error, **common)
    if killed_for == "startup":
        error = f"worker did not reach the timed call within {limits.startup:g} s"
        return Outcome(status="timeout", error=error, **common)
    code = proc.poll()
    if code is not None and code < 0:
        reason = f"worker killed by signal {signal.Signals(-code).name}"
    else:
        reason = f"worker exited with code {code} without a result"
    return Outcome(status="crashed", error=reason, **common)
