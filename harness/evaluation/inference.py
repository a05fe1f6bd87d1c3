"""The one batched inference pass per model, and rebuilding a returned model safely.

`infer` runs a model over the training set (forget and retain rows) and the test set;
every metric starts from those logits. `load_weights` rebuilds the architecture from
its spec (harness code) and loads a worker's weights file with `weights_only=True`, so
no plugin code runs while a model is evaluated; anything that is not a state dict of
that architecture with finite weights is an invalid result, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..models.registry import build_model
from ..toolkit.training import predict_logits

if TYPE_CHECKING:
    from ..data.dataset import Dataset
    from ..models.spec import ModelSpec


@dataclass(frozen=True)
class ModelOutputs:
    """Logits of one model from a single inference pass: every metric starts here.

    `attack_train` and `attack_test`, where set, are what the membership attacks and the
    confidence statistics (MIA, forget quality, LiRA, KLOM) read instead of the logits:
    an ensemble that votes (SISA) predicts by its vote, but its vote counts are not a
    probability; the attacks see the log of the members' mean softmax probability
    instead, a probability like a single model's (and SISA's `softmax-mean` output)."""

    train: torch.Tensor  # (n_train, classes), float32; forget and retain rows by index
    test: torch.Tensor  # (n_test, classes)
    attack_train: torch.Tensor | None = None
    attack_test: torch.Tensor | None = None

    @property
    def scores_train(self) -> torch.Tensor:
        """The logits the attacks read on the training set."""
        return self.train if self.attack_train is None else self.attack_train

    @property
    def scores_test(self) -> torch.Tensor:
        return self.test if self.attack_test is None else self.attack_test


class _MeanProbability(nn.Module):
    """An ensemble seen through the log of its members' weighted mean probability."""

    def __init__(self, ensemble: nn.Module):
        super().__init__()
        self.ensemble = ensemble

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ensemble.combine(x, "softmax-mean")


def infer(model: nn.Module, data: Dataset) -> ModelOutputs:
    """The one batched inference pass over the training and test sets (a voting
    ensemble's members run a second time for the probabilities the attacks read)."""
    out = ModelOutputs(predict_logits(model, data.x_train), predict_logits(model, data.x_test))
    if getattr(model, "aggregation", None) != "vote":
        return out
    view = _MeanProbability(model)
    return replace(
        out,
        attack_train=predict_logits(view, data.x_train),
        attack_test=predict_logits(view, data.x_test),
    )


def load_weights(path, spec: ModelSpec, device: str) -> tuple[nn.Module | None, str | None]:
    """The model rebuilt from the spec with the weights at `path`, or None and why not."""
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
        f"{k} {tuple(state[k].shape) if torch.is_tensor(state[k]) else type(state[k]).__name__}"
        f" != {tuple(v.shape)}"
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
