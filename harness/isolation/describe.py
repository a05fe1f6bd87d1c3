"""Describe a method without importing it here: an `InspectRequest` to a sandboxed worker.

The harness never imports a plugin. What it needs to know about one (its fields, its
validated parameters, the preset it gets, what it reads, its scope, its training stage,
its default budget, the architecture it returns) comes back as a `MethodInfo`, plain
data read with a size cap and parsed strictly. A worker that cannot import the plugin,
crashes or hangs is an `InspectionFailed` with the reason; the callers turn it into a
clear usage error. Costs one forked worker: about 0.1 s once the fork server is warm
(`benchmarks/sandbox_start.py`).

`check_class` does the same for `mu-bench check`'s static checks (`CheckRequest`): the
checks run in the worker, which imported the plugin, and come back as a `CheckReport`.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from .protocol import (
    CHECK_REPORT,
    METHOD_INFO,
    OUTPUT,
    CheckReport,
    CheckRequest,
    InspectRequest,
    Job,
    Limits,
    MethodInfo,
    MethodRef,
)
from .untrusted import UntrustedOutput, read_output

MAX_INFO_BYTES = 4 << 20
MAX_REPORT_BYTES = 1 << 20
# An inspection imports the plugin (which may import heavy libraries) and validates.
INSPECT_LIMITS = dict(budget=120.0, grace=2.0, startup=120.0)


class InspectionFailed(RuntimeError):
    """The method could not be described: its import failed, or its worker did not
    answer properly. `status` is the worker's outcome (`error`: the import raised)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.traceback: str | None = None  # the worker's, where it raised


def describe(
    method: MethodRef,
    params: dict[str, Any] | None = None,
    *,
    use_preset: bool = True,
    dataset: str | None = None,
    forget_rule: str | None = None,
    model_specs: tuple[dict[str, Any], ...] = (),
    preset_name: str | None = None,
    preset_values: dict[str, Any] | None = None,
    candidates: tuple[dict[str, Any], ...] = (),
    detail: bool = False,
    limits: Limits | None = None,
    work: Path | None = None,
) -> MethodInfo:
    """The method's description (see `InspectRequest`), from a sandboxed worker."""
    from ..paths import work_root
    from .runner import run_job

    request = InspectRequest(
        method=method,
        params=dict(params or {}),
        use_preset=use_preset,
        dataset=dataset,
        forget_rule=forget_rule,
        model_specs=tuple(model_specs),
        preset_name=preset_name,
        preset_values=None if preset_values is None else dict(preset_values),
        candidates=tuple(candidates),
        detail=detail,
    )
    limits = limits or Limits(**INSPECT_LIMITS)
    folder = (work or work_root()) / f"inspect-{method.name}-{uuid.uuid4().hex[:8]}"
    try:
        outcome = run_job(Job("inspect", request, {}, limits), folder)
        if outcome.status != "ok":
            raise InspectionFailed(outcome.status, outcome.error or outcome.status)
        try:
            data = read_output(folder / OUTPUT / METHOD_INFO, MAX_INFO_BYTES)
            info = MethodInfo.from_json(json.loads(data))
        except (OSError, ValueError, UntrustedOutput) as exc:
            raise InspectionFailed("invalid", f"malformed description: {exc}") from None
        if info.name != method.name:
            raise InspectionFailed("invalid", f"described as '{info.name}', not '{method.name}'")
        if len(info.candidate_problems) != len(request.candidates):
            raise InspectionFailed("invalid", "not every candidate parameter set was checked")
        return info
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_class(
    method: MethodRef, expected: tuple[str, ...], limits: Limits, work: Path | None = None
) -> CheckReport:
    """The static checks `expected` of `method`'s class, run by a sandboxed worker (see
    `CheckRequest`); raises `InspectionFailed` when the plugin's import raised, crashed
    or hung, or its worker's report is malformed."""
    from ..paths import work_root
    from .runner import run_job

    folder = (work or work_root()) / f"check-{method.name}-{uuid.uuid4().hex[:8]}"
    try:
        outcome = run_job(Job("check", CheckRequest(method), {}, limits), folder)
        if outcome.status != "ok":
            error = InspectionFailed(outcome.status, outcome.error or outcome.status)
            error.traceback = outcome.traceback
            raise error
        try:
            data = read_output(folder / OUTPUT / CHECK_REPORT, MAX_REPORT_BYTES)
            return CheckReport.from_json(json.loads(data), expected)
        except (OSError, ValueError, UntrustedOutput) as exc:
            raise InspectionFailed("invalid", f"malformed check report: {exc}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
