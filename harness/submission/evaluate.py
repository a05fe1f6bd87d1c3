"""Stage 4, evaluate: the seeds' outcomes -> the submission's report.

Each ok seed's model is rebuilt from its validated weights (harness code: no plugin
code runs here) and gets exactly one inference pass; every per-model metric comes from
those logits, then the means, gaps to gold and costs (`aggregate`) and the metrics that
need all of a submission's models at once (`submission_metrics`: forget quality, its
ceiling, the score, LiRA, KLOM) against the scenario's prepared reference. Where the
scenario asks (`[relearn] steps`), each ok seed's model also undergoes the relearning
attack (`evaluation.relearning`, harness code on the validated weights, the same seed and
batches as the gold models' at prepare time), about 0.05 s a digits model.

A `Scorer` does the per-seed part ahead: handed each outcome as `execute` receives it,
it rebuilds and scores that seed on a thread of its own while the next seed runs (the
harness only waits on a worker meanwhile); `evaluate` then takes those results, which
are the values it would compute itself (the same functions on the same inputs).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .. import __version__
from ..evaluation.inference import ModelOutputs, infer, returned_weights
from ..evaluation.relearning import RELEARN_METRICS, relearn_metrics
from ..evaluation.scoring import (
    SubmissionEvaluation,
    aggregate,
    forget_confidences,
    forget_margins,
    model_metrics,
    submission_metrics,
)
from .prepare import mia_seed, relearn_seed
from .report import Report, SeedReport

if TYPE_CHECKING:
    from ..isolation.protocol import Outcome
    from .execute import Execution
    from .plan import Submission
    from .prepare import Artifacts


@dataclass(frozen=True)
class Evaluation:
    """The report, and what the figures are drawn from: each ok seed's outputs and the
    submission-level results."""

    report: Report
    outputs: dict[int, ModelOutputs]
    across: SubmissionEvaluation


def returned_model(outcome: Outcome, out_spec, device: str) -> torch.nn.Module:
    """An ok seed's model, its file read again as untrusted input (`returned_weights`)."""
    model, problem = returned_weights(outcome.weights, out_spec, device)
    if problem:  # the file changed after `execute` checked it
        raise RuntimeError(f"seed {outcome.seed}: {problem}")
    return model


def score_seed(
    outcome: Outcome, art: Artifacts, out_spec, device: str
) -> tuple[ModelOutputs, dict[str, float], float]:
    """One ok seed's inference pass and per-model metrics, and the relearning attack on
    the same loaded model where the scenario asks (`_relearning`); the attack's seconds."""
    model = returned_model(outcome, out_spec, device)
    outputs = infer(model, art.data)
    metrics = model_metrics(outputs, art.data, art.split, mia_seed(art.scenario))
    if _relearning(art, out_spec) is not None:
        return outputs, metrics, 0.0
    start = time.perf_counter()
    metrics.update(
        relearn_metrics(
            model.state_dict(),
            art.spec,
            art.retain,
            art.forget,
            art.scenario.train,
            steps=art.scenario.relearn.steps,
            slice_fraction=art.scenario.relearn.slice_fraction,
            seed=relearn_seed(art.scenario),
            device=device,
        )
    )
    return outputs, metrics, time.perf_counter() - start


class Scorer:
    """Scores ok seeds as they arrive, one at a time on its own thread (see the module
    docstring)."""

    def __init__(self, sub: Submission, art: Artifacts, device: str):
        self.art, self.device = art, device
        self.out_spec = sub.method.output_spec(art.spec)
        self.seconds = 0.0  # spent scoring, overlapped with the seeds
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mu-bench-scorer")
        self._futures: dict[int, tuple[Outcome, Future]] = {}

    def add(self, outcome: Outcome) -> None:
        if outcome.status == "ok":
            self._futures[outcome.seed] = (outcome, self._pool.submit(self._score, outcome))

    def _score(self, outcome: Outcome) -> tuple[ModelOutputs, dict[str, float], float]:
        clock = time.perf_counter()
        try:
            return score_seed(outcome, self.art, self.out_spec, self.device)
        finally:
            self.seconds += time.perf_counter() - clock

    def get(self, outcome: Outcome) -> tuple[ModelOutputs, dict[str, float], float] | None:
        """The seed's scores, if this outcome is the one it was handed (else None)."""
        handed = self._futures.get(outcome.seed)
        if handed is None or handed[0] is not outcome:
            return None
        return handed[1].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _error(outcome: Outcome) -> str | None:
    """The seed's error, with the worker's stderr where no traceback explains it."""
    if outcome.status in ("error", "crashed") and outcome.stderr_tail and not outcome.traceback:
        return f"{outcome.error}\n--- worker stderr (tail) ---\n{outcome.stderr_tail}"
    return outcome.error


def _truncation_notes(method: str, seeds: list[SeedReport]) -> list[str]:
    """A note when a method that reports `truncated` (retrain) stopped at the budget, on
    a seed that finished in time or one that overran it by its last step (a timeout)."""
    cut = [s for s in seeds if s.metrics.get("method.truncated", 0.0) > 0]
    if not cut:
        return []
    done = min(s.metrics.get("method.epochs_completed", float("nan")) for s in cut)
    planned = cut[0].metrics.get("method.epochs", float("nan"))
    which = ("seed " if len(cut) == 1 else "seeds ") + ", ".join(str(s.seed) for s in cut)
    what = "not the oracle" if method == "retrain" else "not a full run of its recipe"
    stopped = f"{method} stopped at the budget after {done:g} of {planned:g} epochs"
    return [f"{stopped} ({which}): {what}"]


def _overrides(sub: Submission) -> dict[str, Any]:
    """The submission's parameters that differ from the method's defaults with the
    scenario's preset (whether or not the preset was used), as its sandboxed inspection
    resolved them (`MethodInfo.standard_params`)."""
    standard = sub.method.standard_params
    return {k: v for k, v in sub.params.items() if k in standard and standard[k] != v}


def _same_keys(per_seed: list[dict[str, float]]) -> list[dict[str, float]]:
    """Every seed's metrics with the same keys (NaN where a method reported a number on
    some seeds only), so that `aggregate` averages each over the seeds that have it."""
    names = list(dict.fromkeys(k for m in per_seed for k in m))
    return [{k: m.get(k, float("nan")) for k in names} for m in per_seed]


def _relearning(art: Artifacts, out_spec) -> str | None:
    """Why the relearning attack is not run on this submission's models, or None."""
    if not art.scenario.relearn.steps:
        return "off"
    if out_spec != art.spec:
        return (
            f"relearning: not run, the method's model ({out_spec.arch}) is not the "
            f"scenario's architecture ({art.spec.arch}), which the attack fine-tunes"
        )
    return None


def _relearn_gaps(metrics: dict[str, float], gold: dict[str, float]) -> None:
    """Each relearning accuracy's distance to the gold models' under the same steps."""
    for name in RELEARN_METRICS.values():
        if name in metrics and name in gold:
            metrics[f"{name}_gap"] = abs(metrics[name] - gold[name])


def evaluate(
    sub: Submission,
    art: Artifacts,
    execution: Execution,
    device: str,
    timings: dict[str, float] | None = None,
    scorer: Scorer | None = None,
) -> Evaluation:
    """Score every ok seed and the submission; `timings` (prepare's, say) join the
    report's own; `scorer`, the seeds it has scored ahead (it is closed here)."""
    clock = time.perf_counter()
    seeds, outputs = [], {}
    no_relearning = _relearning(art, execution.out_spec)
    relearn_seconds = 0.0
    for outcome in execution.outcomes:
        metrics: dict[str, float] = {}
        if outcome.status == "timeout":  # not scored; what the method said it did stays
            metrics.update({f"method.{k}": v for k, v in outcome.reported.items()})
        if outcome.status == "ok":
            scored = scorer.get(outcome) if scorer is not None else None
            if scored is None:
                scored = score_seed(outcome, art, execution.out_spec, device)
            outputs[outcome.seed], metrics, seconds = scored
            metrics = dict(metrics)
            relearn_seconds += seconds
            metrics.update(execution.stage_metrics.get(outcome.seed, {}))
            metrics.update({f"method.{k}": v for k, v in outcome.reported.items()})
        seeds.append(
            SeedReport(
                outcome.seed,
                outcome.status,
                outcome.seconds,
                outcome.wall_seconds,
                _error(outcome),
                outcome.traceback,
                metrics,
            )
        )
    ok = [s for s in seeds if s.status == "ok"]
    ref = art.reference
    metrics = aggregate(
        _same_keys([s.metrics for s in ok]),
        [s.unlearn_seconds for s in ok if s.unlearn_seconds is not None],
        ref.gold_mean_std()[0],
        art.retrain_seconds,
    )
    _relearn_gaps(metrics, ref.gold_mean_std()[0])
    confs = forget_confidences((outputs[s.seed] for s in ok), art.data, art.split)
    margins = forget_margins((outputs[s.seed] for s in ok), art.data, art.split)
    across = submission_metrics(confs, [s.metrics for s in ok], ref, margins)
    metrics.update(across.metrics)
    in_scope = not (sub.method.scope == "class" and sub.scenario.forget.rule != "class")
    notes = [] if in_scope else ["out of scope: a class-unlearning method run on random forgetting"]
    notes.extend(across.notes)
    if no_relearning not in (None, "off") and ok:
        notes.append(no_relearning)
    notes.extend(_truncation_notes(sub.entry.name, seeds))
    if scorer is not None:
        scorer.close()
    all_timings = {
        **(timings or {}),
        **execution.timings,
        "evaluate_seconds": time.perf_counter() - clock,
        **({"scoring_ahead_seconds": scorer.seconds} if scorer is not None else {}),
    }
    if relearn_seconds:
        all_timings["relearn_seconds"] = relearn_seconds
    report = Report(
        scenario=sub.scenario.name,
        scenario_hash=sub.scenario.content_hash,
        method=sub.entry.name,
        distribution=sub.entry.distribution,
        version=sub.entry.version,
        params=sub.params,
        preset=sub.preset,
        budget_seconds=execution.budget_seconds,
        device=device,
        torch_version=torch.__version__,
        harness_version=__version__,
        reads=sub.method.reads,
        in_scope=in_scope,
        seeds=tuple(seeds),
        metrics=metrics,
        reference=ref.summary(),
        notes=tuple(notes),
        timings=all_timings,
        sandbox=execution.sandbox,
        overrides=_overrides(sub),
        scenario_toml=sub.scenario.source_text,
        params_source=sub.params_source,
        params_provenance=sub.provenance,
    )
    return Evaluation(report, outputs, across)
