"""`random-label` (RL): train on the forget set with random labels, then on the retain set.

Source: OPTML-Group/Unlearn-Saliency, `Classification/unlearn/RL.py` (`RL`, mask None)
with the shared loop of `unlearn/impl.py`; the baseline of Fan et al., "SalUn:
Empowering Machine Unlearning via Gradient-based Weight Saliency", ICLR 2024 (and of
Golatkar et al. 2020 before it).

Algorithm (the code's CIFAR-10 / SVHN branch, `passes = "sequential"`), per epoch: one
pass over the forget set with labels drawn uniformly over all classes, fresh for every
batch (so the true label can be drawn), then one pass over the retain set with the true
labels; cross-entropy, `SGD(lr, momentum 0.9, weight decay 5e-4)`, batch 256, shuffled,
train mode, the training augmentation on. `passes = "shuffled"` is the code's
CIFAR-100 / TinyImageNet branch: the forget set gets random labels once per epoch and
is shuffled together with the retain set; the `cifar100` preset selects it, as the code
does for that dataset.

Defaults: no stored script runs plain RL; lr 0.01 and 10 epochs are the SalUn setting
(10 epochs, lr 0.013 with the mask) rounded to the middle of the paper's RL search
range, an inference, not a value read from the code.

Presets per setting: no stored script runs plain RL on any setting (SalUn's scripts
run it only through the mask), so `cifar10-random`, `cifar10-class` and
`cifar100-random` run the defaults; the `cifar100` preset is `RL.py`'s CIFAR-100 branch
(line 51), a choice of the code, not a tuned value.

Deviations: labels are drawn from the task's seeded generator (the code uses torch's
global RNG); the MultiStepLR at epochs 91/136 is omitted (it never fires in 10 epochs);
stops early at the budget.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mu_bench.api import Method, Reads, Split, UnlearnTask, WeightMask, random_labels, run_pass


class RandomLabel(Method):
    """Random labels on the forget set, true labels on the retain set (SalUn's RL baseline)."""

    reads: ClassVar[Reads] = "both"
    # digits: fair tuning (`mu-bench tune random-label --trials 20`, avg_gap against gold models
    # of another draw: class 4, or another 10%), the studies in mu_bench/presets/.
    presets: ClassVar[dict] = {
        "cifar100": {"passes": "shuffled"},
        "digits-class": {"lr": 0.007585904540707062, "batch_size": 32},
        "digits-random": {"lr": 0.004072007913435923, "batch_size": 256},
    }
    preset_sources: ClassVar[dict[str, str]] = {
        "digits-class": "random-label-digits-class3",
        "digits-random": "random-label-digits-random10",
    }
    # `mu-bench tune`: the rate and batch of the earlier sweep.
    search_space: ClassVar[dict[str, str]] = {
        "lr": "log:0.003:0.1",
        "batch_size": "choice:32,64,128,256",
    }

    epochs: int = Field(10, ge=1)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    batch_size: int = Field(256, ge=1)
    passes: Literal["sequential", "shuffled"] = "sequential"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        return self.train_random_labels(task, task.model, mask=None)

    def train_random_labels(
        self, task: UnlearnTask, model: nn.Module, mask: WeightMask | None
    ) -> nn.Module:
        """The RL epochs, through `mask` when one is given (SalUn)."""
        opt = torch.optim.SGD(
            model.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        model.train()

        def ce(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            return F.cross_entropy(model(batch[0]), batch[1])

        gen, n_cls = task.generator, task.num_classes
        for _ in range(self.epochs):
            if self.passes == "sequential":
                forget = random_labels(
                    task.forget.batches(self.batch_size, generator=gen, augment=True), n_cls, gen
                )
                retain = task.retain.batches(self.batch_size, generator=gen, augment=True)
                done = run_pass(opt, forget, ce, task.budget, mask) and run_pass(
                    opt, retain, ce, task.budget, mask
                )
            else:
                f, r = task.forget, task.retain
                y_f = torch.randint(0, n_cls, f.y.shape, generator=gen).to(f.y.device)
                both = Split(torch.cat([f.x, r.x]), torch.cat([y_f, r.y]), r.augment)
                batches = both.batches(self.batch_size, generator=gen, augment=True)
                done = run_pass(opt, batches, ce, task.budget, mask)
            if not done:
                break
        return model.eval()
