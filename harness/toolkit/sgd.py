"""The optimisation loop the iterative baselines share, after the SalUn-family code
(OPTML-Group/Unlearn-Saliency `Classification/unlearn/impl.py` and the `*_iter`
functions of `unlearn/*.py`) and the SCRUB repo's `thirdparty/repdistiller/helper`.

- The optimizer every SalUn-family method (and SCRUB) builds is a plain `torch.optim.SGD`
  (the methods' fields default to momentum 0.9, weight decay 5e-4); its MultiStepLR
  (milestones 91, 136) never fires within an unlearning run, so the rate is constant
  and no scheduler is built.
- `run_pass`: one pass over a stream of batches, one optimizer step per batch, with
  SalUn's optional weight mask, stopping as soon as the budget has expired.
- `WeightMask`: SalUn's saliency mask in either of its two published semantics.
- `step_decay`: repdistiller's `adjust_learning_rate` (SCRUB, CF-k, EU-k).
- `random_labels`: SalUn's `RL.py` label draw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Literal, TypeVar

import torch
from torch import nn

from ..budget import Budget

Batch = TypeVar("Batch")
MaskMode = Literal["gradient", "reset"]


class WeightMask:
    """A 0/1 mask per parameter (1: the coordinate may change), applied around each step.

    `gradient`: multiply each gradient by the mask before the step (the SalUn code until
    2026, which produced the published numbers; momentum and weight decay still move
    masked coordinates a little). `reset`: also put masked coordinates back to their
    value before unlearning and zero their momentum after every step, so they stay
    exactly frozen (commit a6e89fd "Fix weight decay", 2026-02-28)."""

    def __init__(self, model: nn.Module, masks: dict[str, torch.Tensor], mode: MaskMode):
        self.mode = mode
        self.pairs = [(p, masks[name].to(p.dtype)) for name, p in model.named_parameters()]
        self.theta0 = [p.detach().clone() for p, _ in self.pairs] if mode == "reset" else []

    def mask_grads(self) -> None:
        for p, m in self.pairs:
            if p.grad is not None:
                p.grad.mul_(m)

    @torch.no_grad()
    def after_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.mode != "reset":
            return
        for (p, m), p0 in zip(self.pairs, self.theta0, strict=True):
            p.mul_(m).add_(p0 * (1 - m))
            momentum = optimizer.state.get(p, {}).get("momentum_buffer")
            if momentum is not None:
                momentum.mul_(m)


def run_pass(
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    loss_of: Callable[[Batch], torch.Tensor],
    budget: Budget,
    mask: WeightMask | None = None,
) -> bool:
    """One optimizer step per batch on `loss_of(batch)`; False once the budget expired."""
    for batch in batches:
        loss = loss_of(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if mask is not None:
            mask.mask_grads()
        optimizer.step()
        if mask is not None:
            mask.after_step(optimizer)
        if budget.expired:
            return False
    return True


def step_decay(
    optimizer: torch.optim.Optimizer,
    base_lr: float,
    epoch: int,
    milestones: tuple[int, ...],
    rate: float = 0.1,
) -> None:
    """lr = base * rate ** (number of milestones strictly below `epoch`)."""
    lr = base_lr * rate ** sum(epoch > m for m in milestones)
    for group in optimizer.param_groups:
        group["lr"] = lr


def random_labels(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    generator: torch.Generator,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches with labels drawn uniformly over all classes, fresh for each batch
    (the true label included), as SalUn's `RL.py` draws them."""
    for x, y in batches:
        yield x, torch.randint(0, num_classes, y.shape, generator=generator).to(y.device)
