"""SCRUB's max-min distillation epoch, shared by `scrub` and `scrub-r`.

After meghdadk/SCRUB `thirdparty/repdistiller/helper/loops.py` (`train_distill`, called
once with "maximize" on the forget loader for the first `msteps` epochs, then with
"minimize" on the retain loader) and `distiller_zoo/KD.py` (`DistillKL`). Each pass
puts the student in train mode and the teacher in eval mode, as `train_distill` does.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..budget import Budget
from .sgd import run_pass

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
    """repdistiller's `DistillKL`: KL(teacher || student) at temperature t, times t^2."""
    log_p_s = F.log_softmax(student / t, dim=1)
    p_t = F.softmax(teacher / t, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="sum") * t**2 / student.shape[0]


def scrub_epoch(
    student: nn.Module,
    teacher: nn.Module,
    optimizer: torch.optim.Optimizer,
    forget: Batches | None,
    retain: Batches,
    *,
    gamma: float,
    alpha: float,
    kd_t: float,
    budget: Budget,
) -> bool:
    """One SCRUB epoch: a max pass over `forget` (minimising -KL(student, teacher); None
    skips it, as epochs past `msteps` do), then a min pass over `retain` (minimising
    gamma * CE + alpha * KL). False once the budget has expired."""
    teacher.eval()

    def kl(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = teacher(x)
        return distill_kl(logits, target, kd_t)

    def maximize(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return -kl(batch[0], student(batch[0]))

    def minimize(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        logits = student(x)
        return gamma * F.cross_entropy(logits, y) + alpha * kl(x, logits)

    if forget is not None:
        student.train()
        if not run_pass(optimizer, forget, maximize, budget):
            return False
    student.train()
    return run_pass(optimizer, retain, minimize, budget)
