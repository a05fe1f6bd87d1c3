"""Test plugins for `mu-bench check`: `Good` keeps the contract; each other breaks one
rule of it, so that exactly the check for that rule fails."""

import os
import time
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mu_bench.api import Method, Reads, TrainTask, UnlearnTask


def _finetune(method, task: UnlearnTask, generator) -> nn.Module:
    model = task.model
    opt = torch.optim.SGD(model.parameters(), lr=method.lr)
    model.train()
    for _ in range(method.epochs):
        for x, y in task.retain.batches(32, generator=generator):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if method.checks_budget and task.budget.expired:
                return model.eval()
    return model.eval()


class Good(Method):
    """Fine-tunes on the retain set, seeded, stopping at the budget (test plugin)."""

    reads: ClassVar[Reads] = "retain"
    epochs: int = Field(2, ge=1)
    lr: float = Field(0.01, gt=0)
    checks_budget: bool = True

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        return _finetune(self, task, task.generator)


class SeedBlind(Good):
    """Shuffles with a fixed seed: every seed gives the same model (test plugin)."""

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        return _finetune(self, task, torch.Generator().manual_seed(0))


class Unseeded(Good):
    """Shuffles from the operating system's entropy: a seed cannot be repeated."""

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        seed = int.from_bytes(os.urandom(8), "little")
        return _finetune(self, task, torch.Generator().manual_seed(seed))


class IgnoresBudget(Good):
    """Never looks at its budget, and its passes take a while (test plugin)."""

    epochs: int = Field(20, ge=1)
    checks_budget: bool = False

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        time.sleep(0.6)  # work that no budget interrupts
        return _finetune(self, task, task.generator)


class Peeks(Good):
    """Declares the retain set but reads the forget set (test plugin)."""

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        len(task.forget)
        return task.model


class NaNWeights(Good):
    """Returns non-finite weights (test plugin)."""

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        with torch.no_grad():
            for p in task.model.parameters():
                p.fill_(float("nan"))
        return task.model


class BadDeclarations(Good):
    """Well-behaved at run time; its class declarations are wrong (test plugin)."""

    default_budget: ClassVar[str | None] = "soon"
    presets: ClassVar[dict] = {"digits": {"lr": -1.0}, "imagenet": {"lr": 0.1}}


class NotAMethod:
    """Not a Method subclass (test plugin)."""


class StageLeak(Method):
    """Its training stage reads `lr`, which `train_fields` leaves out (test plugin)."""

    reads: ClassVar[Reads] = "retain"
    train_fields: ClassVar[tuple[str, ...]] = ("width",)
    width: int = Field(1, ge=1)
    lr: float = Field(0.01, gt=0)

    def train(self, task: TrainTask) -> nn.Module:
        model = task.fresh_model()
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(self.lr * self.width)
        return model

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        return task.model
