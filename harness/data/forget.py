"""The forget set: which training examples a scenario asks methods to forget.

`random` draws a fixed fraction (or count) of the training set with a seed derived from
the scenario's, or with the dataset protocol's own draw where it has one (SalUn's for
CIFAR); `class` takes every training example of the listed classes, and the test set is
then scored apart for the kept and the forgotten classes (SalUn drops the forgotten
classes from TA). The split is a pure function of the scenario and the dataset, so it
needs no cache of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

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
        if self.rule == "class":
            return f"class {list(self.classes or ())}"
        return f"random {self.fraction or self.count}"


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
        if data.draw_forget is not None:  # the dataset protocol's own draw (SalUn's)
            forget = np.sort(data.draw_forget(n, k))
        else:
            rng = np.random.default_rng(derive_seed(seed, "forget-set"))
            forget = np.sort(rng.permutation(n)[:k])
        gone = torch.zeros(len(data.y_test), dtype=torch.bool)
    else:
        bad = [c for c in config.classes if not 0 <= c < data.num_classes]
        if bad:
            raise UsageError(
                f"forget.classes {bad} out of range: classes are 0..{data.num_classes - 1}"
            )
        forget = np.flatnonzero(np.isin(y, config.classes))
        gone = torch.isin(data.y_test, torch.tensor(config.classes))
    retain = np.setdiff1d(np.arange(n), forget)
    return ForgetSplit(
        torch.from_numpy(forget).long(),
        torch.from_numpy(retain).long(),
        torch.nonzero(~gone).flatten(),
        torch.nonzero(gone).flatten(),
    )
