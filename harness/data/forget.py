"""The forget set: which training examples a scenario asks methods to forget.

`random` draws a fixed fraction (or count) of the training set with a seed derived from
the scenario's, or with the dataset protocol's own draw where it has one (SalUn's for
CIFAR); `class` takes every training example of the listed classes, and the test set is
then scored apart for the kept and the forgotten classes (SalUn drops the forgotten
classes from TA). The split is a pure function of the scenario and the dataset, so it
needs no cache of its own.

`draw` (0: the scenario's own forget set, the one submissions are scored on) names
another forget set of the same rule, disjoint from draw 0: fair tuning
(`submission.tune`) scores its trials on draw 1 so that it never reads the evaluation
set. Random: the seed's permutation of the training set, sliced at `draw * k`
(draw 0 is its first k, as before); with a dataset protocol's own draw (SalUn's), the
permutation of what that draw left out. Class: the next `len(classes)` classes after the
largest listed one, cyclically, skipping the listed ones (digits class 3, draw 1: class
4). Draw 0 is left out of the serialised section, so its cache keys are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from ..errors import UsageError
from ..seeding import derive_seed

if TYPE_CHECKING:
    import torch

    from .dataset import Dataset


class ForgetConfig(BaseModel):
    """A scenario's `[forget]` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Literal["random", "class"]
    fraction: float | None = Field(None, gt=0, lt=1)
    count: int | None = Field(None, gt=0)
    classes: tuple[int, ...] | None = None
    draw: int = Field(0, ge=0, le=1000)

    @model_serializer(mode="wrap")
    def _without_draw_zero(self, handler):
        # Draw 0 is every scenario's forget set: leaving it out keeps the cache keys and
        # scenario hashes of the time before draws.
        data = handler(self)
        if self.draw == 0:
            data.pop("draw", None)
        return data

    @model_validator(mode="after")
    def _rule_fields(self) -> ForgetConfig:
        if self.rule == "random":
            if (self.fraction is None) == (self.count is None):
                raise ValueError("rule 'random' takes exactly one of 'fraction' or 'count'")
            if self.classes is not None:
                raise ValueError("rule 'random' does not take 'classes'")
        else:
            if not self.classes:
                raise ValueError("rule 'class' needs a non-empty 'classes' list")
            if self.fraction is not None or self.count is not None:
                raise ValueError("rule 'class' takes 'classes' only, not 'fraction' or 'count'")
        return self

    def describe(self) -> str:
        tail = f", draw {self.draw}" if self.draw else ""
        if self.rule == "class":
            return f"class {list(self.classes or ())}{tail}"
        return f"random {self.fraction or self.count}{tail}"


def drawn_classes(config: ForgetConfig, num_classes: int) -> tuple[int, ...]:
    """The classes forgotten by `config` (its `draw` applied) when there are `num_classes`."""
    listed = tuple(config.classes or ())
    if config.draw == 0:
        return listed
    m = len(listed)
    others = [(max(listed) + i) % num_classes for i in range(1, num_classes)]
    others = [c for c in others if c not in listed]
    if config.draw * m > len(others):
        raise UsageError(
            f"forget draw {config.draw} of {m} class(es) is impossible: only {len(others)} "
            f"other classes of {num_classes}"
        )
    return tuple(sorted(others[(config.draw - 1) * m : config.draw * m]))


@dataclass(frozen=True)
class ForgetSplit:
    """Indices into the training set (forget, retain) and the test set (kept, gone)."""

    forget_idx: torch.Tensor  # sorted
    retain_idx: torch.Tensor
    test_kept: torch.Tensor  # test examples scored as the test set (all, unless by class)
    test_gone: torch.Tensor  # the forgotten classes' test examples (empty unless by class)


def make_split(config: ForgetConfig, seed: int, data: Dataset) -> ForgetSplit:
    import torch

    y = data.y_train.numpy()
    n = len(y)
    if config.rule == "random":
        k = config.count if config.count is not None else int(round(config.fraction * n))
        if not 0 < k < n:
            raise UsageError(f"forget set of {k} examples is impossible with {n} training examples")
        d = config.draw
        if data.draw_forget is not None and d == 0:  # the dataset protocol's own draw (SalUn's)
            forget = np.sort(data.draw_forget(n, k))
        else:
            order = np.random.default_rng(derive_seed(seed, "forget-set")).permutation(n)
            if data.draw_forget is not None:  # other draws: what the protocol's left out
                order = order[~np.isin(order, data.draw_forget(n, k))]
                d -= 1
            if (d + 1) * k > len(order):
                raise UsageError(
                    f"forget draw {config.draw} of {k} examples is impossible with {n} "
                    "training examples (the draws are disjoint)"
                )
            forget = np.sort(order[d * k : (d + 1) * k])
        gone = torch.zeros(len(data.y_test), dtype=torch.bool)
    else:
        bad = [c for c in config.classes if not 0 <= c < data.num_classes]
        if bad:
            raise UsageError(
                f"forget.classes {bad} out of range: classes are 0..{data.num_classes - 1}"
            )
        classes = drawn_classes(config, data.num_classes)
        forget = np.flatnonzero(np.isin(y, classes))
        gone = torch.isin(data.y_test, torch.tensor(classes))
    retain = np.setdiff1d(np.arange(n), forget)
    return ForgetSplit(
        torch.from_numpy(forget).long(),
        torch.from_numpy(retain).long(),
        torch.nonzero(~gone).flatten(),
        torch.nonzero(gone).flatten(),
    )
