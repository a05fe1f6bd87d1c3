"""What a method may see: `UnlearnTask`, its data `Split`s and its `Budget`, and, for a
method with a training stage (SISA), `TrainTask`.

A task holds a private copy of the original model on the method's device, the forget
set and/or the retain set (only those the method declares it reads), the number of
classes, the seed, the device, the scenario's training recipe and the time budget.
It never holds the test set, the gold models or the leaderboard store: the worker
process that builds it is never given them.

A method that implements `train(task)` gets a `TrainTask` once per seed at prepare time
(the whole training set, in its original order, and a folder for its own state), and
its `UnlearnTask` then starts from the model `train` returned, with that folder and the
training-set positions of the forget and retain rows. `report_metric` records a number
(SISA: the shards it retrained) on the seed's result, as `method.<name>`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .models import ModelSpec
    from .scenario import TrainConfig


class DataAccessError(PermissionError):
    """A method touched a set it did not declare it reads."""


@dataclass
class Budget:
    """Wall-clock budget of one `unlearn()` call; the clock starts when the call does."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed)

    @property
    def expired(self) -> bool:
        return self.elapsed >= self.seconds


@dataclass(frozen=True)
class Split:
    """A labelled set of examples held as tensors on one device."""

    x: torch.Tensor
    y: torch.Tensor
    augment: str = "none"  # the scenario's training augmentation, applied by `batches`

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device), self.augment)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        augment: bool = False,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Minibatches (x, y); `augment=True` applies the scenario's training augmentation."""
        import torch

        from .augment import apply_augment

        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(self.x.device)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            x = self.x[idx]
            if augment and self.augment != "none":
                x = apply_augment(x, self.augment, generator)
            yield x, self.y[idx]


@dataclass(frozen=True)
class UnlearnTask:
    model: nn.Module
    num_classes: int
    seed: int  # the submission's seed index: 0, 1, ..., N-1
    rng_seed: int  # derived from `seed` on the submission stream; global RNGs are seeded with it
    device: torch.device
    budget: Budget
    recipe: TrainConfig
    model_spec: ModelSpec
    generator: torch.Generator  # CPU generator seeded from `seed`: use it for shuffles
    forget_classes: tuple[int, ...] | None = None  # set when the scenario forgets whole classes
    method_name: str = "method"
    forget_set: Split | None = None
    retain_set: Split | None = None
    initial_seed: int | None = None  # the seed the original model was initialised with
    # Set only for a method with a training stage (`Method.train`): a private copy of the
    # state folder its `train` wrote for this seed, and the training-set positions of
    # the forget and retain rows (`forget_index[i]` is where `forget` row i sat in the
    # training set `train` saw).
    trained_dir: Path | None = None
    forget_index: torch.Tensor | None = None
    retain_index: torch.Tensor | None = None
    reported: dict[str, float] = field(default_factory=dict)

    @property
    def forget(self) -> Split:
        return self._granted(self.forget_set, "forget")

    @property
    def retain(self) -> Split:
        return self._granted(self.retain_set, "retain")

    def _granted(self, split: Split | None, which: str) -> Split:
        if split is None:
            raise DataAccessError(
                f"method '{self.method_name}' does not declare that it reads the {which} set "
                f"(set `reads` on the method class to 'both' or '{which}')"
            )
        return split

    def fresh_model(self, seed: int | None = None) -> nn.Module:
        """A newly initialised model of the scenario's architecture, on the task's device."""
        return _fresh_model(self.model_spec, self.device, self.rng_seed if seed is None else seed)

    def report_metric(self, name: str, value: float) -> None:
        """Record a number on this seed's result (logged as `method.<name>`, averaged over
        seeds on the leaderboard). Names: lower case, digits and underscores."""
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"metric name '{name}' must match {_METRIC_NAME.pattern}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"metric '{name}' is {value}, not a finite number")
        self.reported[name] = value

    def initial_model(self) -> nn.Module:
        """The original model's initial weights, before it was trained (EU-k resets layers
        to them), on the task's device. Leaves the global RNG state as it was."""
        import torch

        if self.initial_seed is None:
            raise RuntimeError("this task does not know the original model's initial seed")
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            return _fresh_model(self.model_spec, self.device, self.initial_seed)


_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _fresh_model(spec: ModelSpec, device: torch.device, seed: int) -> nn.Module:
    import torch

    from .models import build_model

    torch.manual_seed(seed)
    return build_model(spec).to(device)


@dataclass(frozen=True)
class TrainTask:
    """What a method's training stage sees: the whole training set (row i is training-set
    position i), never the test set; `state_dir` keeps whatever `unlearn` needs later.

    `budget` is the harness's limit on the whole stage, not the submission's budget."""

    train_set: Split
    num_classes: int
    seed: int
    rng_seed: int
    device: torch.device
    budget: Budget
    recipe: TrainConfig
    model_spec: ModelSpec
    generator: torch.Generator
    state_dir: Path
    method_name: str = "method"

    def fresh_model(self, seed: int | None = None) -> nn.Module:
        """A newly initialised model of the scenario's architecture, on the task's device."""
        return _fresh_model(self.model_spec, self.device, self.rng_seed if seed is None else seed)
