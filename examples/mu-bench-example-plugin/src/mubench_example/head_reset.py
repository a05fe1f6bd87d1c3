"""Re-initialise the classifier head and retrain only it on the retain set.

A one-layer instance of EU-k (Goel et al. 2022, "Towards adversarial evaluation of
unlearning"): the head forgets everything, and the retain set re-teaches it.
"""

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask


class HeadReset(Method):
    """Reset the last linear layer and retrain it on the retain set (EU-1)."""

    reads: ClassVar[Reads] = "retain"

    epochs: int = Field(10, ge=1)
    lr: float = Field(1e-2, gt=0)
    batch_size: int = Field(64, ge=1)

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        model = task.model
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        head.reset_parameters()
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)
        opt = torch.optim.Adam(head.parameters(), lr=self.lr)
        model.eval()  # the frozen body keeps its normalisation statistics
        for _ in range(self.epochs):
            for x, y in task.retain.batches(self.batch_size, generator=task.generator):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()
                if task.budget.expired:
                    return model
        return model
