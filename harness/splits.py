"""The forget set: which training examples a scenario asks methods to forget.

`random` draws a fixed fraction (or count) of the training set with a seed derived from
the scenario's, or with the dataset protocol's own draw where it has one (SalUn's for
CIFAR); `class` takes every training example of the listed classes. The split is a pure
function of the scenario and the dataset, so it needs no cache of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import UsageError
from .seeding import derive_seed

if TYPE_CHECKING:
    import torch

    from .datasets import Dataset
    from .scenario import Scenario


@dataclass(frozen=True)
class ForgetSplit:
    forget_idx: torch.Tensor  # sorted indices into the training set
    retain_idx: torch.Tensor

    @property
    def forget_mask(self) -> torch.Tensor:
        import torch

        n = len(self.forget_idx) + len(self.retain_idx)
        mask = torch.zeros(n, dtype=torch.bool)
        mask[self.forget_idx] = True
        return mask


def make_split(scenario: Scenario, data: Dataset) -> ForgetSplit:
    import torch

    rule = scenario.forget
    y = data.y_train.numpy()
    n = len(y)
    if rule.rule == "random":
        k = rule.count if rule.count is not None else int(round(rule.fraction * n))
        if not 0 < k < n:
            raise UsageError(f"forget set of {k} examples is impossible with {n} training examples")
        if data.draw_forget is not None:  # the dataset protocol's own draw (SalUn's)
            forget = np.sort(data.draw_forget(n, k))
        else:
            rng = np.random.default_rng(derive_seed(scenario.seed, "forget-set"))
            forget = np.sort(rng.permutation(n)[:k])
    else:
        bad = [c for c in rule.classes if not 0 <= c < data.num_classes]
        if bad:
            raise UsageError(
                f"forget.classes {bad} out of range: classes are 0..{data.num_classes - 1}"
            )
        forget = np.flatnonzero(np.isin(y, rule.classes))
    retain = np.setdiff1d(np.arange(n), forget)
    return ForgetSplit(torch.from_numpy(forget).long(), torch.from_numpy(retain).long())
