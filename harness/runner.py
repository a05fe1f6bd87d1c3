"""Run one (method, seed) in an isolated worker process under a hard time budget.

After automlbenchmark: a fresh process in its own process group (see `launch`), files in and out,
an escalating kill, a status for every outcome. The budget clock starts when the worker
signals it is about to call `unlearn()`; at budget + grace the whole group gets SIGTERM,
then SIGKILL after `term_grace`; finally every process still carrying the seed's token
in its environment (a detached grandchild that left the group, say) is killed. Output
goes to log files, not pipes, so a stray child holding them open cannot hang us.

Statuses: ok, timeout, error (exception; message and traceback kept), crashed (killed
by a signal or exited without a result) and invalid (set later by the validator, or
when `unlearn()` returns something that is not a module).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .launch import start_worker, sweep, worker_env

STATUSES = ("ok", "timeout", "error", "crashed", "invalid")


@dataclass(frozen=True)
class Limits:
    budget: float  # seconds for the unlearn() call
    grace: float = 2.0  # slack past the budget before the kill starts
    term_grace: float = 3.0  # SIGTERM -> SIGKILL
    startup: float = 300.0  # interpreter start, imports and data loading
    poll: float = 0.02


@dataclass(frozen=True)
class SeedOutcome:
    seed: int
    status: str
    seed_dir: Path
    unlearn_seconds: float | None = None  # measured inside the worker
    wall_seconds: float | None = None  # measured outside: `started` to exit
    startup_seconds: float | None = None  # spawn to `started`: interpreter, imports, data
    error: str | None = None
    traceback: str | None = None
    stderr_tail: str = ""
    leftovers_killed: int = 0
    reported: dict[str, float] = field(default_factory=dict)  # task.report_metric values

    @property
    def weights(self) -> Path:
        return self.seed_dir / "unlearned.pt"

    def with_status(self, status: str, error: str | None) -> SeedOutcome:
        from dataclasses import replace

        return replace(self, status=status, error=error)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode(errors="replace")


def _kill_group(pid: int, sig: int) -> None:
    """Signal the worker's process group (it leads its own session), and the worker itself
    in case it has not yet become a session leader."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, sig)


def run_worker(seed: int, seed_dir: Path, task: dict[str, Any], limits: Limits) -> SeedOutcome:
    """Write `task.json` into `seed_dir`, run the worker on it and classify the outcome."""
    seed_dir.mkdir(parents=True, exist_ok=True)
    (seed_dir / "task.json").write_text(json.dumps(task, indent=1))
    token = uuid.uuid4().hex
    proc = start_worker(seed_dir, worker_env(token), str(task.get("device", "cpu")))
    spawned = time.monotonic()
    started: float | None = None
    killed_for: str | None = None
    started_file = seed_dir / "started"
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
    wall = end - started if started is not None else None
    startup_seconds = started - spawned if started is not None else None

    result = _read_result(seed_dir)
    common = dict(
        seed=seed,
        seed_dir=seed_dir,
        wall_seconds=wall,
        startup_seconds=startup_seconds,
        stderr_tail=_tail(seed_dir / "stderr.log"),
        leftovers_killed=leftovers,
    )
    if result is not None:
        seconds = result.get("unlearn_seconds")
        if result["status"] == "ok" and seconds is not None and seconds > limits.budget:
            return SeedOutcome(
                status="timeout",
                unlearn_seconds=seconds,
                error=f"unlearn() took {seconds:.2f} s, over the {limits.budget:g} s budget",
                reported=_reported(result),  # what it says it did (retrain: epochs done)
                **common,
            )
        return SeedOutcome(
            status=result["status"],
            unlearn_seconds=seconds,
            error=result.get("error"),
            traceback=result.get("traceback"),
            reported=_reported(result),
            **common,
        )
    if killed_for == "budget":
        return SeedOutcome(
            status="timeout",
            error=f"killed after the {limits.budget:g} s budget (+{limits.grace:g} s grace)",
            **common,
        )
    if killed_for == "startup":
        return SeedOutcome(
            status="timeout",
            error=f"worker did not reach unlearn() within {limits.startup:g} s",
            **common,
        )
    code = proc.poll()
    if code is not None and code < 0:
        reason = f"worker killed by signal {signal.Signals(-code).name}"
    else:
        reason = f"worker exited with code {code} without a result"
    return SeedOutcome(status="crashed", error=reason, **common)


def _reported(result: dict[str, Any]) -> dict[str, float]:
    """The method's reported numbers, keeping only finite ones (the worker checked them)."""
    metrics = result.get("metrics")
    if not isinstance(metrics, dict):
        return {}
    out = {}
    for k, v in metrics.items():
        if isinstance(k, str) and isinstance(v, int | float) and math.isfinite(v):
            out[k] = float(v)
    return out


def _read_result(seed_dir: Path) -> dict[str, Any] | None:
    try:
        result = json.loads((seed_dir / "result.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("status") not in STATUSES:
        return None
    return result
