"""`scrub` (SCRUB): a student distilled from the original model, pushed away from it on
the forget set and kept close to it on the retain set.

Source: Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023;
meghdadk/SCRUB, `thirdparty/repdistiller/helper/loops.py` (`train_distill`),
`distiller_zoo/KD.py` (`DistillKL`), `helper/util.py` (`adjust_learning_rate`), driven
as in `MIA_experiments.ipynb` (CIFAR-10, ResNet).

Algorithm: teacher = a frozen copy of the original (eval mode), student = the original
(train mode), KL(s, t) = KL(softmax(t / T) || softmax(s / T)) * T^2, summed over the
batch and divided by its size. For epoch e = 1..E: lr = lr0 * 0.1^(milestones below e);
if e <= msteps, one max pass over the forget set minimising -KL; then one min pass over
the retain set minimising gamma * CE + alpha * KL. One `SGD(lr, momentum 0.9, weight
decay 5e-4)` for both passes, no augmentation (the notebooks' loaders use
`augment=False`).

Defaults: 5 epochs, msteps 3, lr 5e-4, gamma 1, alpha 0.5, T 4, milestones (3, 5, 9),
retain batch 32, forget batch 16 (`MIA_experiments.ipynb`).

Presets per setting: `cifar10-class` is `large_scale_unlearning.ipynb` (CIFAR-10, all
of class 5, an All-CNN): cell 32, SGD momentum 0.9, weight decay 5e-4, lr 5e-4, 3
epochs, msteps 2, gamma 0.99, alpha 0.001, T 4, milestones (3, 5, 9); cell 28, retain
batch 256, forget batch 512. No notebook runs CIFAR-10 10% random (the defaults'
`MIA_experiments.ipynb` forgets 100 examples of class 5) or CIFAR-100 10% random
(`resnet50_cifar100.ipynb` forgets 100 examples of class 0 of CIFAR-100 with a
ResNet-50 and Adam), so `cifar10-random` and `cifar100-random` run the defaults.

The epoch itself (both passes, `DistillKL`) is `mu_bench.api.scrub_epoch`, which
`scrub-r` (SCRUB+R) shares.

Deviations: stops early at the budget. The repo's `scrub.py` helper builds its optimizer
over the wrong model (the un-copied one); the notebooks, followed here, do not.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask, scrub_epoch, step_decay


class Scrub(Method):
    """Max-min distillation from the original model (Kurmanji et al., NeurIPS 2023)."""

    reads: ClassVar[Reads] = "both"
    # digits: fair tuning (`mu-bench tune scrub --trials 20`, avg_gap against gold models
    # of another draw: class 4, or another 10%), the studies in mu_bench/presets/; an
    # earlier sweep found that lr 2e-3 and up collapse.
    presets: ClassVar[dict] = {
        # large_scale_unlearning.ipynb cell 32 (the SCRUB settings), cell 28 (batches).
        "cifar10-class": {
            "epochs": 3,
            "msteps": 2,
            "lr": 5e-4,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "gamma": 0.99,
            "alpha": 0.001,
            "kd_t": 4.0,
            "lr_decay_epochs": (3, 5, 9),
            "lr_decay_rate": 0.1,
            "retain_batch_size": 256,
            "forget_batch_size": 512,
        },
        "digits-class": {"lr": 0.0008029375707134636},
        "digits-random": {"lr": 0.0019884159068421564},
    }
    preset_sources: ClassVar[dict[str, str]] = {
        "digits-class": "scrub-digits-class3",
        "digits-random": "scrub-digits-random10",
    }
    # `mu-bench tune`: the rate, below the collapse the earlier sweep found at 2e-3.
    search_space: ClassVar[dict[str, str]] = {"lr": "log:2e-4:3e-3"}

    epochs: int = Field(5, ge=1)
    msteps: int = Field(3, ge=0)
    lr: float = Field(5e-4, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    gamma: float = Field(1.0, ge=0)
    alpha: float = Field(0.5, ge=0)
    kd_t: float = Field(4.0, gt=0)
    lr_decay_epochs: tuple[int, ...] = (3, 5, 9)
    lr_decay_rate: float = Field(0.1, gt=0)
    retain_batch_size: int = Field(32, ge=1)
    forget_batch_size: int = Field(16, ge=1)

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        student = task.model
        teacher = copy.deepcopy(student).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        opt = torch.optim.SGD(
            student.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        gen = task.generator
        for epoch in range(1, self.epochs + 1):
            step_decay(opt, self.lr, epoch, self.lr_decay_epochs, self.lr_decay_rate)
            forget = None
            if epoch <= self.msteps:
                forget = task.forget.batches(self.forget_batch_size, generator=gen)
            retain = task.retain.batches(self.retain_batch_size, generator=gen)
            loss = dict(gamma=self.gamma, alpha=self.alpha, kd_t=self.kd_t, budget=task.budget)
            if not scrub_epoch(student, teacher, opt, forget, retain, **loss):
                break
        return student.eval()
