"""A submission's stages composed, without figures or the store: plan's result -> prepare
-> execute -> evaluate (a deletion stream: `stream.run_stream`; a family of forget sets:
`family.run_family`). For the reference
leaderboard, tests and benchmarks; the CLI composes the same stages itself, then draws
the figures and records the report."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from ..device import resolve_device
from ..paths import work_root
from .evaluate import Evaluation, evaluate
from .execute import execute
from .prepare import prepare

if TYPE_CHECKING:
    from ..isolation.executor import Executor
    from .plan import Submission


def work_folder(sub: Submission) -> Path:
    """A fresh scratch folder for one submission's jobs."""
    return work_root() / f"{sub.scenario.name}-{sub.entry.name}-{uuid.uuid4().hex[:8]}"


def run(
    sub: Submission,
    device: str = "auto",
    *,
    executor: Executor | None = None,
    keep_work: bool = False,
    grace: float = 2.0,
) -> Evaluation:
    """Prepare, execute and evaluate a planned submission (`grace`: seconds past the
    budget before a seed is killed); on a scenario with a `[stream]`, its stream of
    deletion requests (`stream.run_stream`: the last request's evaluation); on one with
    a `[family]`, each forget set's (`family.run_family`: the family's evaluation)."""
    device = resolve_device(device)
    if sub.scenario.stream is not None:
        from .stream import run_stream

        result = run_stream(sub, device, executor=executor, keep_work=keep_work, grace=grace)
        return result.evaluation
    if sub.scenario.family is not None:
        from .family import run_family

        return run_family(
            sub, device, executor=executor, keep_work=keep_work, grace=grace
        ).evaluation
    clock = time.perf_counter()
    art = prepare(sub.scenario, device)
    prepared = time.perf_counter() - clock
    work = work_folder(sub)
    try:
        execution = execute(sub, art, device, work, executor, grace=grace)
        return evaluate(sub, art, execution, device, {"prepare_seconds": prepared})
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
