"""Score models from their logits: per model, across a submission's models, and the
reference values of the prepared (gold and original) models.

`model_metrics` computes every per-model metric from one model's `ModelOutputs`;
`aggregate` turns per-seed values into means, standard deviations, gaps to the gold
models and costs; `submission_metrics` computes what needs several models at once
(forget quality, its ceiling and normalised value, the score, LiRA) against a
`Reference`: the gold, holdout-gold, IN and original models' values, which the prepare
stage computes once per scenario and caches. A warm submission computes only its own
models' metrics (about 0.1 s per digits model).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .catalogue import GAP_METRICS, TIMING_FLOOR
from .metrics.accuracy import accuracy, per_example_loss
from .metrics.confidence import logit_scaled_confidence, true_class_probability
from .metrics.forget_quality import ForgetQuality, forget_quality, n_bins, score
from .metrics.lira import LiraResult, lira_attack
from .metrics.mia import indiscernibility, mia_efficacy, mia_loss_acc

if TYPE_CHECKING:
    from ..data.dataset import Dataset
    from ..data.forget import ForgetSplit
    from .inference import ModelOutputs

# Below this many models per side, forget quality's bins are few and coarse.
SMALL_N = 8


def model_metrics(
    outputs: ModelOutputs, data: Dataset, split: ForgetSplit, mia_seed: int
) -> dict[str, float]:
    """Per-model metrics. With class forgetting, `test_acc` covers the kept classes and
    `test_forget_acc` the forgotten classes' test images, and the loss MIA's non-members
    are those same-class test images (SCRUB's variant of the kit's MIA); otherwise the
    non-members are the whole test set, as in the kit. `mia_efficacy`'s test set is the
    kept classes' (SalUn drops the forgotten classes from it)."""
    f, r = split.forget_idx, split.retain_idx
    y = data.y_train
    kept, gone = split.test_kept, split.test_gone
    forget_logits, forget_y = outputs.train[f], y[f]
    test_logits, test_y = outputs.test, data.y_test
    non_members = gone if len(gone) else kept
    shadow = r[: len(kept)]  # SalUn's shadow members: the first |D_t| retain examples
    metrics = {
        "forget_acc": accuracy(forget_logits, forget_y),
        "retain_acc": accuracy(outputs.train[r], y[r]),
        "test_acc": accuracy(test_logits[kept], test_y[kept]),
        "mia_loss_acc": mia_loss_acc(
            per_example_loss(forget_logits, forget_y).numpy(),
            per_example_loss(test_logits[non_members], test_y[non_members]).numpy(),
            seed=mia_seed,
        ),
        "mia_efficacy": mia_efficacy(
            true_class_probability(outputs.train[shadow], y[shadow]),
            true_class_probability(test_logits[kept], test_y[kept]),
            true_class_probability(forget_logits, forget_y),
        ),
    }
    metrics["indiscernibility"] = indiscernibility(metrics["mia_loss_acc"])
    if len(gone):
        metrics["test_forget_acc"] = accuracy(test_logits[gone], test_y[gone])
    return metrics


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def forget_confidences(
    models: Iterable[ModelOutputs], data: Dataset, split: ForgetSplit
) -> np.ndarray:
    """(models, |D_f|): the logit-scaled confidence of each forget example under each
    model (the challenge's statistic, and LiRA's)."""
    f = split.forget_idx
    rows = [logit_scaled_confidence(o.train[f], data.y_train[f]) for o in models]
    return np.stack(rows) if rows else np.zeros((0, len(f)))


@dataclass(frozen=True)
class Reference:
    """What every submission to a scenario is scored against, computed at prepare time:
    the per-model metrics of the original and of each gold model, the gold, holdout-gold
    and IN models' forget-set confidences, and the forget-quality ceiling (gold models
    0..N-1 against holdout gold models 0..N-1) at the N a default submission has;
    `ceiling(n)` computes any other N on demand."""

    original: dict[str, float]
    gold: tuple[dict[str, float], ...]
    gold_confs: np.ndarray  # (K, |D_f|)
    holdout_confs: np.ndarray  # (K, |D_f|); K = 0 without the ceiling's second gold set
    in_confs: np.ndarray  # (M, |D_f|); M = 0 without LiRA
    ceilings: dict[int, float] = field(default_factory=dict)  # N -> ceiling, precomputed
    fix_variance: bool = False  # LiRA's fixed-variance variant

    def ceiling(self, n: int) -> float | None:
        """The ceiling at N = n, or None when there are fewer than n holdout models."""
        if n in self.ceilings:
            return self.ceilings[n]
        if n > min(len(self.gold_confs), len(self.holdout_confs)):
            return None
        return ceiling(self.gold_confs, self.holdout_confs, n)

    def gold_mean_std(self) -> tuple[dict[str, float], dict[str, float]]:
        mean, std = {}, {}
        for name in self.gold[0]:
            mean[name], std[name] = mean_std(g[name] for g in self.gold)
        return mean, std

    def summary(self) -> dict[str, dict[str, float]]:
        """The report's `reference`: the original's metrics and the gold mean and std."""
        mean, std = self.gold_mean_std()
        return {"original": dict(self.original), "gold": mean, "gold_std": std}


def ceiling(gold_confs: np.ndarray, holdout_confs: np.ndarray, n: int) -> float:
    """The forget-quality ceiling at N = n: F of holdout gold models 0..n-1 against gold
    models 0..n-1 (gold scored against an independent gold set)."""
    return forget_quality(holdout_confs[:n], gold_confs[:n]).value


def aggregate(
    per_seed: Sequence[dict[str, float]],
    unlearn_seconds: Sequence[float],
    gold: dict[str, float],
    retrain_seconds: float,
) -> dict[str, float]:
    """Means and stds over ok seeds, gaps of the means to the gold means, and costs."""
    out: dict[str, float] = {}
    if not per_seed:
        return out
    for name in per_seed[0]:
        out[name], out[f"{name}_std"] = mean_std(s[name] for s in per_seed)
    gaps = []
    for name in GAP_METRICS:
        out[f"{name}_gap"] = abs(out[name] - gold[name])
        gaps.append(out[f"{name}_gap"])
    out["avg_gap"] = float(np.mean(gaps))
    if unlearn_seconds:
        seconds = statistics.median(unlearn_seconds)
        out["unlearn_seconds"] = seconds
        out["retrain_seconds"] = retrain_seconds
        # Below the timing floor the ratio says nothing (a no-op's "speed-up" of 850,000):
        # no speed-up is reported, and the tables print "n/a".
        if seconds >= TIMING_FLOOR:
            out["speedup"] = retrain_seconds / seconds
    return out


@dataclass(frozen=True)
class SubmissionEvaluation:
    """The metrics that need several models at once, and why any is missing."""

    metrics: dict[str, float]
    notes: tuple[str, ...] = ()
    forget_quality: ForgetQuality | None = None
    lira: LiraResult | None = None


def submission_metrics(
    unlearned_confs: np.ndarray, per_seed: Sequence[dict[str, float]], ref: Reference
) -> SubmissionEvaluation:
    """Forget quality, its ceiling and normalised value, the score, and LiRA, from the ok
    seeds' forget confidences (in seed order; `per_seed` their `model_metrics`) and the
    reference. Forget quality compares N = min(ok seeds, gold models) of each side: the
    first N seeds against gold models 0..N-1, and the ceiling holdout models 0..N-1
    against the same gold models, so both are at the same N."""
    out: dict[str, float] = {}
    notes: list[str] = []
    fq = lira = None
    seeds, k = len(unlearned_confs), len(ref.gold_confs)
    n = min(seeds, k)
    if seeds < 2:
        notes.append(
            f"no forget_quality: it compares N unlearned models (the method's seeds) with N "
            f"gold models, and {seeds} seed succeeded; submit with --seeds 2 or more "
            f"(8 or more for a useful resolution)"
        )
    elif k < 2:
        notes.append("no forget_quality: the scenario has fewer than 2 gold models")
    else:
        if n < seeds:
            notes.append(f"forget_quality uses the first {n} seeds: there are {n} gold models")
        fq = forget_quality(unlearned_confs[:n], ref.gold_confs[:n])
        ra_u = float(np.mean([s["retain_acc"] for s in per_seed[:n]]))
        ta_u = float(np.mean([s["test_acc"] for s in per_seed[:n]]))
        ra_r = float(np.mean([g["retain_acc"] for g in ref.gold[:n]]))
        ta_r = float(np.mean([g["test_acc"] for g in ref.gold[:n]]))
        out["forget_quality"] = fq.value
        out["forget_quality_models"] = float(n)
        out["score"] = score(fq.value, ra_u, ra_r, ta_u, ta_r)
        if n < SMALL_N:
            notes.append(
                f"forget_quality from N = {n} models per side is coarse ({n_bins(n)} bins of "
                f"0.5 up to ceil(ln(N - 1))) and biased low; compare forget_quality_norm, or "
                f"submit with --seeds {SMALL_N} or more"
            )
        at_n = ref.ceiling(n)
        if at_n is None:
            notes.append(
                "no forget_quality_ceiling: the scenario trains no second gold set "
                "([gold] ceiling = false)"
            )
        else:
            out["forget_quality_ceiling"] = at_n
            if at_n > 0:
                out["forget_quality_norm"] = fq.value / at_n
                out["score_norm"] = out["score"] / at_n
    if len(ref.in_confs) >= 2 and k >= 3 and seeds:
        lira = lira_attack(
            unlearned_confs, ref.gold_confs, ref.in_confs, fix_variance=ref.fix_variance
        )
        out["lira_auc"] = lira.auc
        out["lira_tpr_at_1pct_fpr"] = lira.tpr_at_1pct_fpr
        out["lira_tpr_at_0.1pct_fpr"] = lira.tpr_at_01pct_fpr
    return SubmissionEvaluation(out, tuple(notes), fq, lira)
