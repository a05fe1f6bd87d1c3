"""Score unlearned models against the gold models, from one inference pass per model.

`infer` runs the single batched pass over the training set (forget and retain rows)
and the test set; `model_metrics` computes every per-model metric from those logits;
`aggregate` turns per-seed values into means, standard deviations, gaps to gold and
costs; `submission_metrics` computes the metrics that need several models at once
(forget quality, score, LiRA) from the same logits. The gold, holdout-gold, IN and
original models' logits were computed at prepare time; their per-model metrics and the
forget-quality ceiling are cached beside them (keyed by `METRICS_VERSION`), so a warm
submission computes only its own models' metrics (about 0.1 s per digits model).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .artifacts import Artifacts, ModelOutputs, TrainedModel
from .cache import key_of
from .metrics.accuracy import accuracy, per_example_loss
from .metrics.confidence import logit_scaled_confidence, true_class_probability
from .metrics.forget_quality import ForgetQuality, forget_quality, n_bins, score
from .metrics.lira import LiraResult, lira_attack
from .metrics.mia import indiscernibility, mia_efficacy, mia_loss_acc
from .models import ModelSpec, build_model
from .seeding import derive_seed
from .training import predict_logits

if TYPE_CHECKING:
    from torch import nn

# Per-model metrics whose gap to the gold mean is reported, and that avg_gap averages
# (SalUn's Avg. Gap: UA = 1 - forget_acc has the same gap as forget_acc).
GAP_METRICS = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")
# Bump when a metric's definition changes: keys the cached reference metrics.
METRICS_VERSION = "2"
# Below this many models per side, forget quality's bins are few and coarse.
SMALL_N = 8


def load_weights(path, spec: ModelSpec, device: str) -> tuple[nn.Module | None, str | None]:
    """The unlearned model rebuilt from the spec, or None and why it is invalid."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:
        return None, f"unreadable weights file: {type(exc).__name__}: {exc}"
    if not isinstance(state, dict):
        return None, "weights file does not hold a state dict"
    model = build_model(spec)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and (not torch.is_tensor(state[k]) or state[k].shape != v.shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        if wrong:
            parts.append(f"wrong shapes {wrong[:5]}")
        return None, f"returned model is not a '{spec.arch}' of the scenario: " + "; ".join(parts)
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        return None, f"non-finite weights in {bad[:5]}"
    model.load_state_dict(state)
    return model.to(device).eval(), None


def infer(model: nn.Module, art: Artifacts) -> ModelOutputs:
    """The one batched inference pass over the training and test sets."""
    return ModelOutputs(
        predict_logits(model, art.data.x_train), predict_logits(model, art.data.x_test)
    )


def model_metrics(outputs: ModelOutputs, art: Artifacts) -> dict[str, float]:
    """Per-model metrics. With class forgetting, `test_acc` covers the kept classes and
    `test_forget_acc` the forgotten classes' test images, and the loss MIA's non-members
    are those same-class test images (SCRUB's variant of the kit's MIA); otherwise the
    non-members are the whole test set, as in the kit. `mia_efficacy`'s test set is the
    kept classes' (SalUn drops the forgotten classes from it)."""
    f, r = art.split.forget_idx, art.split.retain_idx
    y = art.data.y_train
    kept, gone = art.test_split
    forget_logits, forget_y = outputs.train[f], y[f]
    test_logits, test_y = outputs.test, art.data.y_test
    non_members = gone if len(gone) else kept
    shadow = r[: len(kept)]  # SalUn's shadow members: the first |D_t| retain examples
    metrics = {
        "forget_acc": accuracy(forget_logits, forget_y),
        "retain_acc": accuracy(outputs.train[r], y[r]),
        "test_acc": accuracy(test_logits[kept], test_y[kept]),
        "mia_loss_acc": mia_loss_acc(
            per_example_loss(forget_logits, forget_y).numpy(),
            per_example_loss(test_logits[non_members], test_y[non_members]).numpy(),
            seed=derive_seed(art.scenario.seed, "mia-subsample"),
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


def _cached(art: Artifacts, payload: dict, compute: Callable[[], dict]) -> dict:
    """`compute()`, cached in the artifact cache under a hash of `payload`."""
    if art.cache is None:
        return compute()
    key = key_of({**payload, "metrics_version": METRICS_VERSION})
    return art.cache.get_or_build("metrics", key, lambda tmp: compute()).meta


def prepared_metrics(m: TrainedModel, art: Artifacts) -> dict[str, float]:
    """`model_metrics` of a prepared model, computed once and cached beside it."""
    if not m.key:
        return model_metrics(m.outputs, art)
    payload = {"model": m.key, "split": art.scenario.section_hash("data", "forget")}
    return _cached(art, payload, lambda: model_metrics(m.outputs, art))


def gold_metrics(art: Artifacts) -> list[dict[str, float]]:
    """Per-model metrics of each gold model, in order."""
    return [prepared_metrics(m, art) for m in art.gold]


def reference(art: Artifacts) -> dict[str, dict[str, float]]:
    """Per-model metrics of the original model and the mean (and std) over gold models."""
    gold = gold_metrics(art)
    gold_mean, gold_std = {}, {}
    for name in gold[0]:
        gold_mean[name], gold_std[name] = mean_std(g[name] for g in gold)
    return {
        "original": prepared_metrics(art.original, art),
        "gold": gold_mean,
        "gold_std": gold_std,
    }


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
        out["speedup"] = retrain_seconds / seconds if seconds > 0 else float("inf")
    return out


@dataclass(frozen=True)
class SubmissionEvaluation:
    """The metrics that need several models at once, and why any is missing."""

    metrics: dict[str, float]
    notes: tuple[str, ...] = ()
    forget_quality: ForgetQuality | None = None
    lira: LiraResult | None = None


def forget_confidences(outputs: ModelOutputs, art: Artifacts) -> np.ndarray:
    """Logit-scaled confidence of each forget example (the challenge's statistic)."""
    f = art.split.forget_idx
    return logit_scaled_confidence(outputs.train[f], art.data.y_train[f])


def _confs(models: Iterable[ModelOutputs], art: Artifacts) -> np.ndarray:
    return np.stack([forget_confidences(o, art) for o in models])


def forget_quality_ceiling(art: Artifacts, n: int) -> float:
    """F of the first n holdout gold models against the first n gold models (cached)."""
    payload = {
        "ceiling": [m.key for m in art.gold[:n]],
        "holdout": [m.key for m in art.gold_holdout[:n]],
    }

    def compute() -> dict:
        holdout = _confs((m.outputs for m in art.gold_holdout[:n]), art)
        gold = _confs((m.outputs for m in art.gold[:n]), art)
        return {"value": forget_quality(holdout, gold).value}

    if not all(payload["ceiling"] + payload["holdout"]):
        return compute()["value"]
    return _cached(art, payload, compute)["value"]


def submission_metrics(
    outputs: Sequence[ModelOutputs], per_seed: Sequence[dict[str, float]], art: Artifacts
) -> SubmissionEvaluation:
    """Forget quality, its ceiling and normalised value, the score, and LiRA, from the
    ok seeds' outputs (in seed order, `per_seed` their `model_metrics`) and the prepared
    models'. Forget quality compares N = min(ok seeds, gold models) of each side: the
    first N seeds against gold models 0..N-1, and the ceiling holdout models 0..N-1
    against the same gold models, so both are at the same N."""
    out: dict[str, float] = {}
    notes: list[str] = []
    fq = lira = None
    n = min(len(outputs), len(art.gold))
    # The forget set's confidences under every model, once: forget quality takes the
    # first n of each side, LiRA all of them.
    unlearned_confs = _confs(outputs, art) if outputs else np.zeros((0, 0))
    gold_confs = _confs((m.outputs for m in art.gold), art)
    if len(outputs) < 2:
        notes.append(
            f"no forget_quality: it compares N unlearned models (the method's seeds) with N "
            f"gold models, and {len(outputs)} seed succeeded; submit with --seeds 2 or more "
            f"(8 or more for a useful resolution)"
        )
    elif len(art.gold) < 2:
        notes.append("no forget_quality: the scenario has fewer than 2 gold models")
    else:
        if n < len(outputs):
            notes.append(f"forget_quality uses the first {n} seeds: there are {n} gold models")
        fq = forget_quality(unlearned_confs[:n], gold_confs[:n])
        gold = gold_metrics(art)[:n]
        ra_u = float(np.mean([s["retain_acc"] for s in per_seed[:n]]))
        ta_u = float(np.mean([s["test_acc"] for s in per_seed[:n]]))
        ra_r = float(np.mean([g["retain_acc"] for g in gold]))
        ta_r = float(np.mean([g["test_acc"] for g in gold]))
        out["forget_quality"] = fq.value
        out["forget_quality_models"] = float(n)
        out["score"] = score(fq.value, ra_u, ra_r, ta_u, ta_r)
        if n < SMALL_N:
            notes.append(
                f"forget_quality from N = {n} models per side is coarse ({n_bins(n)} bins of "
                f"0.5 up to ceil(ln(N - 1))) and biased low; compare forget_quality_norm, or "
                f"submit with --seeds {SMALL_N} or more"
            )
        if len(art.gold_holdout) < n:
            notes.append(
                "no forget_quality_ceiling: the scenario trains no second gold set "
                "([gold] ceiling = false)"
            )
        else:
            ceiling = forget_quality_ceiling(art, n)
            out["forget_quality_ceiling"] = ceiling
            if ceiling > 0:
                out["forget_quality_norm"] = fq.value / ceiling
                out["score_norm"] = out["score"] / ceiling
    if len(art.in_models) >= 2 and len(art.gold) >= 3 and outputs:
        lira = lira_attack(
            unlearned_confs,
            gold_confs,
            _confs((m.outputs for m in art.in_models), art),
            fix_variance=art.scenario.lira.fix_variance,
        )
        out["lira_auc"] = lira.auc
        out["lira_tpr_at_1pct_fpr"] = lira.tpr_at_1pct_fpr
        out["lira_tpr_at_0.1pct_fpr"] = lira.tpr_at_01pct_fpr
    return SubmissionEvaluation(out, tuple(notes), fq, lira)
