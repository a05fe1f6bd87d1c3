"""Score unlearned models against the gold models, from one inference pass per model.

`infer` runs the single batched pass over the training set (forget and retain rows)
and the test set; `model_metrics` computes every per-model metric from those logits;
`aggregate` turns per-seed values into means, standard deviations, gaps to gold and
costs. The gold and original models' logits were computed at prepare time.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .artifacts import Artifacts, ModelOutputs
from .metrics.accuracy import accuracy, per_example_loss
from .metrics.mia import mia_loss_acc
from .models import ModelSpec, build_model
from .seeding import derive_seed
from .training import predict_logits

if TYPE_CHECKING:
    from torch import nn

# Per-model metrics whose gap to the gold mean is reported, and that avg_gap averages.
GAP_METRICS = ("forget_acc", "retain_acc", "test_acc")


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
    non-members are the whole test set, as in the kit."""
    f, r = art.split.forget_idx, art.split.retain_idx
    y = art.data.y_train
    kept, gone = art.test_split
    forget_logits, forget_y = outputs.train[f], y[f]
    test_logits, test_y = outputs.test, art.data.y_test
    non_members = gone if len(gone) else kept
    metrics = {
        "forget_acc": accuracy(forget_logits, forget_y),
        "retain_acc": accuracy(outputs.train[r], y[r]),
        "test_acc": accuracy(test_logits[kept], test_y[kept]),
        "mia_loss_acc": mia_loss_acc(
            per_example_loss(forget_logits, forget_y).numpy(),
            per_example_loss(test_logits[non_members], test_y[non_members]).numpy(),
            seed=derive_seed(art.scenario.seed, "mia-subsample"),
        ),
    }
    if len(gone):
        metrics["test_forget_acc"] = accuracy(test_logits[gone], test_y[gone])
    return metrics


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def reference(art: Artifacts) -> dict[str, dict[str, float]]:
    """Per-model metrics of the original model and the mean (and std) over gold models."""
    gold = [model_metrics(m.outputs, art) for m in art.gold]
    gold_mean, gold_std = {}, {}
    for name in gold[0]:
        gold_mean[name], gold_std[name] = mean_std(g[name] for g in gold)
    return {
        "original": model_metrics(art.original.outputs, art),
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
