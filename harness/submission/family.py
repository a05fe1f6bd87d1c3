"""Families of forget sets: one submission scored on several forget sets of one rule.

A scenario with a `[family]` section (`draws`: a count N, draws 0..N-1, or a list of
draw numbers) stands for several *member* scenarios: itself with `forget.draw = k` for
each listed draw k (`data.forget`: draw 0 is the scenario's own forget set; for class
forgetting draw k is the k-th next class, so a one-class family of 10 draws on digits
covers every class; for random forgetting, disjoint slices of one permutation). Each
member is the plain submission it would be, composed from the existing stages, not a
copy of them:

    check_family    every member's split drawn before anything is trained (a draw that
                    does not fit the data is a UsageError: nothing written)
    prepare_family  `prepare` per member: each member's gold, holdout and relearning
                    references are cache entries keyed by its forget section (draw
                    included), so each forget set is prepared once and shared by every
                    method and scenario with the same sections; the original and LiRA's
                    IN models do not depend on the forget set and are shared by all
                    members (and with the single scenario of the same data and recipe)
    run_family      per member, `execute` and `evaluate` (the submission's seeds, budget
                    and scores as for that member alone), then `combine`

The family's report (`combine`): every metric is the mean over the sets of the members'
values (only metrics every set has; a set with no successful seed leaves the
submission-level metrics out), `family_sets` counts the sets and `family.<name>_std`,
`_min` and `_max` give the spread over the sets of the headline metrics
(`catalogue.FAMILY_SPREAD`); `forget_sets` lists each set (its draw, forget set, size,
status and metrics) and its seeds are every member's, each tagged with its set's draw.
The store logs each set's metrics as `set.<name>` at step = draw (`9_family` section).

Fair tuning and families: `mu-bench tune` scores its trials on draw 1 (`TUNING_DRAW`)
unless told otherwise. A family that contains the tuning draw is scored partly on the set
a fair-tuned preset was tuned on: for class forgetting over every class this cannot be
avoided, so that set is flagged (`tuning_draw` in its `forget_sets` entry, and a note),
not hidden; a random family can leave draw 1 out (`draws = [0, 2, 3, 4, 5]`, as
`digits-random10-family` does). Where the preset's provenance names its tuning draw, that
draw is the one flagged.

Cost: N times a single submission's prepare (once, cached) and N times its seeds and
evaluation per submit; see the family scenarios' comments for measured numbers.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache import Cache
from ..data.forget import ForgetConfig, drawn_classes, make_split
from ..data.registry import build_dataset, signature
from ..device import resolve_device
from ..errors import UsageError
from ..evaluation.catalogue import FAMILY_PREFIX, FAMILY_SPREAD
from ..evaluation.scoring import mean_std
from ..paths import work_root
from .evaluate import Evaluation, evaluate
from .execute import execute
from .prepare import Artifacts, TrainedModel, prepare

if TYPE_CHECKING:
    from ..isolation.executor import Executor
    from ..isolation.protocol import Outcome
    from ..scenario import Scenario
    from .plan import Submission
    from .report import Report

# `mu-bench tune`'s default tuning forget set (`submission.tune.tuning_scenario`).
TUNING_DRAW = 1


def member(scenario: Scenario, draw: int) -> Scenario:
    """The member scenario of `draw`: the family's scenario with that forget draw and no
    `[family]` (named `<name>.draw<k>`); its caches are keyed as any scenario's."""
    forget = ForgetConfig.model_validate({**scenario.forget.model_dump(), "draw": draw})
    name = f"{scenario.name}.draw{draw}"
    return scenario.model_copy(update={"forget": forget, "family": None, "name": name})


def members(scenario: Scenario) -> list[Scenario]:
    """The member scenarios, in the order of `[family] draws`."""
    if scenario.family is None:
        raise UsageError(f"scenario '{scenario.name}' has no [family] section")
    return [member(scenario, k) for k in scenario.family.members]


def check_family(scenario: Scenario) -> None:
    """A UsageError, before anything is trained or written, unless every member's forget
    set can be drawn (class draws are checked from the dataset's declared classes; a
    random draw needs the data's size, so the dataset is built, not cached)."""
    scenarios = members(scenario)
    if scenario.forget.rule == "class":
        classes = signature(scenario.data)[1]
        for m in scenarios:
            drawn_classes(m.forget, classes)
        return
    data = build_dataset(scenario.data, scenario.seed)
    for m in scenarios:
        try:
            make_split(m.forget, m.seed, data)
        except UsageError as exc:
            raise UsageError(f"scenario '{scenario.name}' [family]: {exc}") from None


@dataclass(frozen=True)
class Prepared:
    """One member prepared: its draw, scenario, artifacts and prepare time."""

    draw: int
    scenario: Scenario
    art: Artifacts
    seconds: float


def prepare_family(
    scenario: Scenario,
    device: str = "auto",
    *,
    on_model: Callable[[TrainedModel], None] | None = None,
    cache: Cache | None = None,
    executor: Executor | None = None,
) -> tuple[Prepared, ...]:
    """Every member prepared (trained, or loaded from the cache), after `check_family`."""
    device = resolve_device(device)
    check_family(scenario)
    done = []
    for m in members(scenario):
        clock = time.perf_counter()
        art = prepare(m, device, on_model=on_model, cache=cache, executor=executor)
        done.append(Prepared(m.forget.draw, m, art, time.perf_counter() - clock))
    return tuple(done)


def forget_text(p: Prepared) -> str:
    """A member's forget set in words: its classes (`class [4]`), or the random rule and
    draw (`random 0.1, draw 2`)."""
    forget = p.scenario.forget
    if forget.rule == "class":
        return f"class {list(drawn_classes(forget, p.art.data.num_classes))}"
    return forget.describe()


@dataclass(frozen=True)
class Member:
    """One member's submission: what it was scored against and its evaluation."""

    prepared: Prepared
    evaluation: Evaluation


@dataclass(frozen=True)
class FamilyResult:
    """The family's evaluation (its report `combine`d from the members'; its outputs and
    submission-level results are the first member's, which the figures are drawn from),
    the first member's artifacts, and each member."""

    evaluation: Evaluation
    art: Artifacts
    members: tuple[Member, ...]


def run_family(
    sub: Submission,
    device: str = "auto",
    *,
    prepared: tuple[Prepared, ...] | None = None,
    executor: Executor | None = None,
    keep_work: bool = False,
    grace: float = 2.0,
    timings: dict[str, float] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> FamilyResult:
    """Run the planned submission `sub` on each member of its scenario's family (preparing
    them unless `prepared` is given), one member after another, and combine the reports."""
    device = resolve_device(device)
    timings = dict(timings or {})
    if prepared is None:
        clock = time.perf_counter()
        prepared = prepare_family(sub.scenario, device)
        timings["prepare_seconds"] = time.perf_counter() - clock
    done = []
    for p in prepared:
        sub_k = replace(sub, scenario=p.scenario)
        # As `pipeline.work_folder` (which imports this module): a fresh scratch folder.
        work = work_root() / f"{p.scenario.name}-{sub.entry.name}-{uuid.uuid4().hex[:8]}"
        try:
            execution = execute(
                sub_k, p.art, device, work, executor, grace=grace, on_outcome=on_outcome
            )
            evaluation = evaluate(sub_k, p.art, execution, device, {"prepare_seconds": p.seconds})
        finally:
            if not keep_work:
                shutil.rmtree(work, ignore_errors=True)
        done.append(Member(p, evaluation))
    report = combine(sub, done, timings)
    first = done[0].evaluation
    return FamilyResult(replace(first, report=report), done[0].prepared.art, tuple(done))


def _means(dicts: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each key every dict has (in the first dict's order)."""
    common = [k for k in dicts[0] if all(k in d for d in dicts[1:])] if dicts else []
    return {k: float(np.mean([d[k] for d in dicts])) for k in common}


def aggregate_sets(per_set: list[dict[str, float]]) -> dict[str, float]:
    """The family's metrics from each set's: the mean of every metric all sets have,
    `family_sets`, and the spread (`family.<name>_std`, `_min`, `_max`) of the headline
    metrics (`FAMILY_SPREAD`) all sets have."""
    out = _means(per_set)
    out["family_sets"] = float(len(per_set))
    for k in FAMILY_SPREAD:
        if k in out:
            values = [m[k] for m in per_set]
            out[f"{FAMILY_PREFIX}{k}_std"] = mean_std(values)[1]
            out[f"{FAMILY_PREFIX}{k}_min"] = float(min(values))
            out[f"{FAMILY_PREFIX}{k}_max"] = float(max(values))
    return out


def _tuning_draw(sub: Submission) -> tuple[int, bool]:
    """The draw a fair-tuned preset was tuned on (its provenance's), else tune's default;
    and whether it came from the preset."""
    tuning_set = (sub.provenance or {}).get("tuning_set")
    if isinstance(tuning_set, dict) and isinstance(tuning_set.get("draw"), int):
        return tuning_set["draw"], True
    return TUNING_DRAW, False


def _set_entry(m: Member, index: int, tuning: int) -> dict[str, Any]:
    p, report = m.prepared, m.evaluation.report
    entry: dict[str, Any] = {
        "set": index,
        "draw": p.draw,
        "forget": forget_text(p),
        "size": len(p.art.split.forget_idx),
        "status": report.status,
        "seeds_ok": f"{report.seeds_ok}/{len(report.seeds)}",
        "tuning_draw": p.draw == tuning,
        "scenario_hash": p.scenario.content_hash,
        "gold_models": len(p.art.gold),
        "retrain_seconds": p.art.retrain_seconds,
        "prepare_seconds": p.seconds,
        "cache_hits": sum(x.cache_hit for x in p.art.models),
        "models": len(p.art.models),
        "metrics": dict(report.metrics),
        "notes": list(report.notes),
    }
    if p.scenario.forget.rule == "class":  # the classes this draw forgets
        entry["classes"] = list(drawn_classes(p.scenario.forget, p.art.data.num_classes))
    return entry


def _timings(reports: list[Report], given: dict[str, float]) -> dict[str, float]:
    """The members' timings summed (a worker's start-up, a median per set: their mean),
    then `given` (the caller's, for the whole family)."""
    total: dict[str, float] = {}
    for r in reports:
        for k, v in r.timings.items():
            total[k] = total.get(k, 0.0) + v
    startups = [
        r.timings["worker_startup_seconds"]
        for r in reports
        if "worker_startup_seconds" in r.timings
    ]
    if startups:
        total["worker_startup_seconds"] = float(np.mean(startups))
    return {**total, **given}


def combine(sub: Submission, done: list[Member], timings: dict[str, float]) -> Report:
    """The family's report from its members' (see the module docstring)."""
    reports = [m.evaluation.report for m in done]
    tuning, from_preset = _tuning_draw(sub)
    sets = tuple(_set_entry(m, i, tuning) for i, m in enumerate(done))
    metrics = aggregate_sets([r.metrics for r in reports])
    roles = [role for role in reports[0].reference if all(role in r.reference for r in reports)]
    reference = {role: _means([r.reference[role] for r in reports]) for role in roles}
    seeds = tuple(
        replace(s, forget_set=m.prepared.draw) for m in done for s in m.evaluation.report.seeds
    )
    draws = [m.prepared.draw for m in done]
    notes = [
        f"a family of {len(done)} forget sets (draws {draws}): every metric is the mean over "
        "the sets, family.* their spread (per set: forget_sets); the figures are draw "
        f"{draws[0]}'s"
    ]
    flagged = [s for s in sets if s["tuning_draw"]]
    if flagged:
        whose = "this preset was tuned on" if from_preset else "`mu-bench tune` tunes on by default"
        notes.append(
            f"draw {tuning} ({flagged[0]['forget']}) is the forget set {whose}: a fair-tuned "
            "preset has seen it (marked tuning_draw in forget_sets)"
        )
    missing = [s["draw"] for s in sets if s["status"] != "ok"]
    if missing:
        notes.append(f"draws {missing} did not finish every seed: see forget_sets")
    first = reports[0]
    return replace(
        first,
        scenario=sub.scenario.name,
        scenario_hash=sub.scenario.content_hash,
        scenario_toml=sub.scenario.source_text,
        seeds=seeds,
        metrics=metrics,
        reference=reference,
        notes=tuple(notes),
        timings=_timings(reports, timings),
        forget_sets=sets,
    )
