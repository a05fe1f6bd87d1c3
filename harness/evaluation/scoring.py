"""Score models from their logits: per model, across a submission's models, and the
reference values of the prepared (gold and original) models.

`model_metrics` computes every per-model metric from one model's `ModelOutputs`;
`aggregate` turns per-seed values into means, standard deviations, gaps to the gold
models and costs; `submission_metrics` computes what needs several models at once
(forget quality, its ceiling and normalised value, the score, LiRA, KLOM) against a
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
from .ceiling import PooledF, pooled_ceiling, pooled_forget_quality
from .metrics.accuracy import accuracy, per_example_loss
from .metrics.confidence import logit_scaled_confidence, true_class_probability
from .metrics.forget_quality import ForgetQuality, forget_quality, n_bins, score
from .metrics.klom import klom, margins
from .metrics.klom import summary as klom_summary
from .metrics.lira import LiraResult, lira_attack
from .metrics.mia import indiscernibility, mia_efficacy, mia_loss_acc

if TYPE_CHECKING:
    from ..data.dataset import Dataset
    from ..data.forget import ForgetSplit
    from .inference import ModelOutputs

# Below this many models per side, forget quality's bins are few and coarse.
SMALL_N = 8
# Disjoint pairs of N-sets the pooled ceiling averages (evaluation.ceiling).
CEILING_PAIRS = 20
# At most this many disjoint gold sets score a method's F (8 at N = 8 from 64 models:
# each once; about 0.04 s each on digits, on up to 4 threads: `ceiling._f_values`).
MAX_GOLD_SETS = 8


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
    # the attacks read probabilities (a voting ensemble's mean probability: ModelOutputs)
    scores, test_scores = outputs.scores_train, outputs.scores_test
    non_members = gone if len(gone) else kept
    shadow = r[: len(kept)]  # SalUn's shadow members: the first |D_t| retain examples
    metrics = {
        "forget_acc": accuracy(forget_logits, forget_y),
        "retain_acc": accuracy(outputs.train[r], y[r]),
        "test_acc": accuracy(test_logits[kept], test_y[kept]),
        "mia_loss_acc": mia_loss_acc(
            per_example_loss(scores[f], forget_y).numpy(),
            per_example_loss(test_scores[non_members], test_y[non_members]).numpy(),
            seed=mia_seed,
        ),
        "mia_efficacy": mia_efficacy(
            true_class_probability(scores[shadow], y[shadow]),
            true_class_probability(test_scores[kept], test_y[kept]),
            true_class_probability(scores[f], forget_y),
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
    rows = [logit_scaled_confidence(o.scores_train[f], data.y_train[f]) for o in models]
    return np.stack(rows) if rows else np.zeros((0, len(f)))


def forget_margins(models: Iterable[ModelOutputs], data: Dataset, split: ForgetSplit) -> np.ndarray:
    """(models, |D_f|): each forget example's margin under each model (KLOM's statistic)."""
    f = split.forget_idx
    rows = [margins(o.scores_train[f], data.y_train[f]) for o in models]
    return np.stack(rows) if rows else np.zeros((0, len(f)))


def _empty() -> np.ndarray:
    return np.zeros((0, 0))


@dataclass(frozen=True)
class Reference:
    """What every submission to a scenario is scored against, computed at prepare time:
    the per-model metrics of the original and of each gold model, the gold, holdout-gold
    and IN models' forget-set confidences, and the forget-quality ceiling at the N a
    default submission has: pooled (`evaluation.ceiling.pooled_ceiling`) over disjoint
    pairs of N-model sets drawn from all gold and holdout-gold models, its mean and the
    spread of one draw; `ceiling(n)` computes any other N on demand."""

    original: dict[str, float]
    gold: tuple[dict[str, float], ...]
    gold_confs: np.ndarray  # (K, |D_f|)
    holdout_confs: np.ndarray  # (K, |D_f|); K = 0 without the ceiling's second gold set
    in_confs: np.ndarray  # (M, |D_f|); M = 0 without LiRA
    ceilings: dict[int, float] = field(default_factory=dict)  # N -> ceiling, precomputed
    fix_variance: bool = False  # LiRA's fixed-variance variant
    # KLOM's margins of the gold and holdout-gold models on the forget set (K, |D_f|).
    gold_margins: np.ndarray = field(default_factory=_empty)
    holdout_margins: np.ndarray = field(default_factory=_empty)
    ceiling_spreads: dict[int, float] = field(default_factory=dict)  # N -> one draw's std

    @property
    def pool(self) -> np.ndarray:
        """Every retrained model's forget confidences: gold, then holdout gold."""
        return np.concatenate([self.gold_confs, self.holdout_confs])

    def pooled(self, n: int) -> PooledF | None:
        """The pooled ceiling at N = n, or None without holdout models or fewer than 2n
        gold and holdout models together."""
        if not len(self.holdout_confs) or len(self.pool) < 2 * n or n < 2:
            return None
        return pooled_ceiling(self.pool, n, pairs=CEILING_PAIRS)

    def ceiling(self, n: int) -> float | None:
        """The ceiling's mean at N = n, or None where `pooled` is."""
        if n in self.ceilings:
            return self.ceilings[n]
        got = self.pooled(n)
        return None if got is None else got.mean

    def ceiling_spread(self, n: int) -> float | None:
        """The standard deviation of one draw of the ceiling at N = n (what a retrained
        method's F varies by), or None."""
        if n in self.ceiling_spreads:
            return self.ceiling_spreads[n]
        got = self.pooled(n)
        return None if got is None else got.std

    def method_f(self, unlearned_confs: np.ndarray) -> PooledF | None:
        """A method's N models against the disjoint N-sets of one shuffle of the pool (at
        most `MAX_GOLD_SETS`), or None without holdout models."""
        n = len(unlearned_confs)
        if not len(self.holdout_confs) or len(self.pool) < n:
            return None
        sets = min(len(self.pool) // n, MAX_GOLD_SETS)
        return pooled_forget_quality(unlearned_confs, self.pool, sets=sets)

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
    """One draw of the forget-quality ceiling at N = n: F of holdout gold models 0..n-1
    against gold models 0..n-1 (gold scored against an independent gold set)."""
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


def _undefined_note(fq: ForgetQuality) -> str:
    total = len(fq.epsilons)
    if fq.undefined == total:
        return (
            f"forget_quality undefined: on all {total} forget examples both sides are the same "
            f"point mass (the challenge's reference refuses such input); not reported as 1.0"
        )
    return (
        f"forget_quality over {total - fq.undefined} of {total} forget examples: on "
        f"{fq.undefined} both sides are the same point mass (undefined; the challenge's "
        f"reference refuses them)"
    )


@dataclass(frozen=True)
class SubmissionEvaluation:
    """The metrics that need several models at once, and why any is missing."""

    metrics: dict[str, float]
    notes: tuple[str, ...] = ()
    forget_quality: ForgetQuality | None = None
    lira: LiraResult | None = None


def klom_metrics(
    unlearned_margins: np.ndarray, ref: Reference
) -> tuple[dict[str, float], list[str]]:
    """KLOM (`metrics.klom`, the reference's definition) of the first N = min(seeds, gold)
    unlearned models against gold models 0..N-1 on the forget set: the 95th percentile of
    the per-example values (the reference's `klom_95`), the number of examples where it
    is undefined (NaN: no unlearned margin counted, left out of the percentile), and its
    floor, holdout gold models 0..N-1 against the same gold models (what exact
    unlearning gets at this N; KLOM is large at small N whatever the method)."""
    out: dict[str, float] = {}
    notes: list[str] = []
    n = min(len(unlearned_margins), len(ref.gold_margins))
    if n < 1 or unlearned_margins.shape[1] == 0:
        return out, notes
    values = klom_summary(klom(unlearned_margins[:n], ref.gold_margins[:n]))
    out["klom"] = values.p95
    out["klom_undefined"] = float(values.undefined)
    if values.undefined:
        notes.append(
            f"klom: undefined on {values.undefined} of {unlearned_margins.shape[1]} forget "
            f"examples (the method's margins all equal the pooled maximum, which the "
            f"reference's histogram leaves uncounted: e.g. seeds returning one model); its "
            f"95th percentile is over the rest"
        )
    if len(ref.holdout_margins) >= n:
        out["klom_floor"] = klom_summary(klom(ref.holdout_margins[:n], ref.gold_margins[:n])).p95
    return out, notes


def submission_metrics(
    unlearned_confs: np.ndarray,
    per_seed: Sequence[dict[str, float]],
    ref: Reference,
    unlearned_margins: np.ndarray | None = None,
) -> SubmissionEvaluation:
    """Forget quality, its ceiling and normalised value, the score, and LiRA, from the ok
    seeds' forget confidences (in seed order; `per_seed` their `model_metrics`) and the
    reference. Forget quality compares N = min(ok seeds, gold models) of each side: the
    first N seeds against every disjoint N-set of the gold and holdout-gold models (the
    mean, and `forget_quality_std` its spread over the sets; gold models 0..N-1 alone
    without holdout models), and the ceiling is pooled at the same N (its mean, and
    `forget_quality_ceiling_std` the spread of one draw)."""
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
        if fq.undefined:
            notes.append(_undefined_note(fq))
        ra_u = float(np.mean([s["retain_acc"] for s in per_seed[:n]]))
        ta_u = float(np.mean([s["test_acc"] for s in per_seed[:n]]))
        ra_r = float(np.mean([g["retain_acc"] for g in ref.gold[:n]]))
        ta_r = float(np.mean([g["test_acc"] for g in ref.gold[:n]]))
        out["forget_quality_models"] = float(n)
        f_value = fq.value
        pooled = None if math.isnan(f_value) else ref.method_f(unlearned_confs[:n])
        if pooled is not None and not math.isnan(pooled.mean):
            # against every disjoint N-set of the retrained models, not one draw of them
            f_value = pooled.mean
            out["forget_quality_std"] = pooled.std
        if not math.isnan(f_value):
            out["forget_quality"] = f_value
            out["score"] = score(f_value, ra_u, ra_r, ta_u, ta_r)
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
            spread = ref.ceiling_spread(n)
            if spread is not None:
                out["forget_quality_ceiling_std"] = spread
            if at_n > 0 and "forget_quality" in out:
                out["forget_quality_norm"] = f_value / at_n
                out["score_norm"] = out["score"] / at_n
    if len(ref.in_confs) >= 2 and k >= 3 and seeds:
        lira = lira_attack(
            unlearned_confs, ref.gold_confs, ref.in_confs, fix_variance=ref.fix_variance
        )
        out["lira_auc"] = lira.auc
        out["lira_tpr_at_1pct_fpr"] = lira.tpr_at_1pct_fpr
        out["lira_tpr_at_0.1pct_fpr"] = lira.tpr_at_01pct_fpr
    if unlearned_margins is not None:
        values, klom_notes = klom_metrics(unlearned_margins, ref)
        out.update(values)
        notes.extend(klom_notes)
    return SubmissionEvaluation(out, tuple(notes), fq, lira)
