"""`neggrad-plus` (NegGrad+): descend on the retain set and ascend on the forget set in
one weighted loss.

Source: Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023;
meghdadk/SCRUB, `thirdparty/repdistiller/helper/loops.py` (`train_negrad`), run as in
`MIA_experiments.ipynb` (CIFAR-10, ResNet).

Algorithm, per epoch: iterate `zip(retain batches, cycle(forget batches))`, so an epoch
is one pass over the retain set and the forget batches repeat in the order of their
first pass (`itertools.cycle` replays what it saw); per step, loss = beta * CE(retain
batch) - (1 - beta) * CE(forget batch); plain `SGD(lr)` (no momentum, no weight decay),
train mode, no augmentation (the SCRUB notebooks build their loaders with
`augment=False`).

Defaults: beta 0.9999, lr 0.01, 5 epochs, retain batch 32, forget batch 16
(`MIA_experiments.ipynb`).

Presets per setting: none of the three CIFAR settings has published values. The
defaults' `MIA_experiments.ipynb` forgets 100 examples of CIFAR-10 class 5; the
class-wise `large_scale_unlearning.ipynb` runs no NegGrad+; `resnet50_cifar100.ipynb`
sets beta 0.9999, lr 0.01, 5 epochs (cell 23) for 100 examples of CIFAR-100 class 0 and
never calls it. So `cifar10-random`, `cifar10-class` and `cifar100-random` run the
defaults.

Deviations: stops early at the budget.
"""

from __future__ import annotations

from itertools import cycle
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask, run_pass

Pair = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class NegGradPlus(Method):
    """Retain-set descent plus forget-set ascent in one loss (Kurmanji et al., NeurIPS 2023)."""

    reads: ClassVar[Reads] = "both"
    # digits: fair tuning (`mu-bench tune neggrad-plus --trials 20`, avg_gap against gold
    # models of another draw: class 4, or another 10%), the studies in mu_bench/presets/.
    # beta is a cliff (an earlier sweep on the evaluation sets: 0.94 forgot half of digit 3,
    # 0.9 cost 12 points of retain accuracy, 0.9999 did nothing).
    presets: ClassVar[dict] = {
        "digits-class": {"beta": 0.94159960797346, "lr": 0.01708746118339144},
        "digits-random": {"beta": 0.8636989565714218, "lr": 0.029766143504119612},
    }
    preset_sources: ClassVar[dict[str, str]] = {
        "digits-class": "neggrad-plus-digits-class3",
        "digits-random": "neggrad-plus-digits-random10",
    }
    # `mu-bench tune`: the weight of the two losses around the cliff above, and the rate.
    search_space: ClassVar[dict[str, str]] = {"beta": "float:0.85:0.99", "lr": "log:0.003:0.03"}

    beta: float = Field(0.9999, ge=0, le=1)
    epochs: int = Field(5, ge=1)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    retain_batch_size: int = Field(32, ge=1)
    forget_batch_size: int = Field(16, ge=1)

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        model = task.model
        opt = torch.optim.SGD(
            model.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        model.train()

        def loss(pair: Pair) -> torch.Tensor:
            (x_r, y_r), (x_f, y_f) = pair
            retain = F.cross_entropy(model(x_r), y_r)
            forget = F.cross_entropy(model(x_f), y_f)
            return self.beta * retain - (1 - self.beta) * forget

        gen = task.generator
        for _ in range(self.epochs):
            retain = task.retain.batches(self.retain_batch_size, generator=gen)
            forget = cycle(task.forget.batches(self.forget_batch_size, generator=gen))
            if not run_pass(opt, zip(retain, forget, strict=False), loss, task.budget):
                break
        return model.eval()
