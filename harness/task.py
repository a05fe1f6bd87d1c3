"""What a method may see: `UnlearnTask`, and for a method with a training stage (SISA)
`TrainTask`.

An `UnlearnTask` holds a private copy of the starting model on the method's device, the
forget set, the retain set and the scenario's validation set (held out of the training
data; only those the method declares it reads), the number
of classes, the seed, the device, the scenario's training recipe and the time budget.
It never holds the test set, the gold models or the leaderboard store: the worker
process that builds it is never given them.

A method that implements `train(task)` gets a `TrainTask` once per seed (the whole
training set, in its original order, and a folder for its own state), and its
`UnlearnTask` then starts from the model `train` returned, with that folder and the
training-set positions of the forget and retain rows, and a folder to leave its updated
state in for the next request of a deletion stream. `report_metric` records a number
(SISA: the shards it retrained) on the seed's result, as `method.<name>`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .budget import Budget
from .isolation.protocol import METRIC_NAME

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .data.split import Split
    from .models.spec import ModelSpec
    from .toolkit.recipe import TrainConfig


class DataAccessError(PermissionError):
    """A method touched a set it did not declare it reads."""


@dataclass(frozen=True, kw_only=True)
class _Task:
    num_classes: int
    seed: int  # the seed index: 0, 1, ..., N-1
    rng_seed: int  # derived from `seed`; global RNGs are already seeded with it
    device: torch.device
    budget: Budget
    recipe: TrainConfig
    model_spec: ModelSpec  # the scenario's architecture
    generator: torch.Generator  # CPU generator seeded with `rng_seed`: use it for shuffles
    method_name: str = "method"
    reported: dict[str, float] = field(default_factory=dict)

    def fresh_model(self, seed: int | None = None) -> nn.Module:
        """A newly initialised model of the scenario's architecture, on the task's device
        (initialised from `rng_seed` unless `seed` is given)."""
        return _fresh_model(self.model_spec, self.device, self.rng_seed if seed is None else seed)

    def report_metric(self, name: str, value: float) -> None:
        """Record a number on this seed's result (logged as `method.<name>`, averaged over
        seeds on the leaderboard). Names: lower case, digits and underscores."""
        if not METRIC_NAME.fullmatch(name):
            raise ValueError(f"metric name '{name}' must match {METRIC_NAME.pattern}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"metric '{name}' is {value}, not a finite number")
        self.reported[name] = value


@dataclass(frozen=True, kw_only=True)
class UnlearnTask(_Task):
    model: nn.Module  # a private copy of the starting model, in eval mode
    forget_classes: tuple[int, ...] | None = None  # set when the scenario forgets classes
    forget_set: Split | None = None
    retain_set: Split | None = None
    validation_set: Split | None = None  # held out of the training data, never the test set
    initial_seed: int | None = None  # the seed the original model was initialised with
    # Set only for a method with a training stage (`Method.train`): a private copy of the
    # state folder its `train` wrote for this seed, and the training-set positions of
    # the forget and retain rows (`forget_index[i]` is where `forget` row i sat in the
    # training set `train` saw).
    trained_dir: Path | None = None
    forget_index: torch.Tensor | None = None
    retain_index: torch.Tensor | None = None
    # An empty folder of the worker's own output: the state a following deletion
    # request (a scenario's `[stream]`) starts from, i.e. `trained_dir` brought up to
    # date (a request after the first gets it as its `trained_dir`; left empty, the
    # next request gets this request's `trained_dir` again). Training-set positions in
    # neither `forget_index` nor `retain_index` were deleted by earlier requests.
    state_dir: Path | None = None

    @property
    def forget(self) -> Split:
        return self._granted(self.forget_set, "forget")

    @property
    def retain(self) -> Split:
        return self._granted(self.retain_set, "retain")

    @property
    def validation(self) -> Split:
        """The scenario's validation set: examples held out of the training data (never
        trained on by the original model, never the test set)."""
        return self._granted(self.validation_set, "validation")

    def _granted(self, split: Split | None, which: str) -> Split:
        if split is None:
            hint = {
                "validation": "'validation', 'forget+validation', 'retain+validation' or "
                "'both+validation'",
            }.get(which, f"'both' or '{which}' (optionally with '+validation')")
            raise DataAccessError(
                f"method '{self.method_name}' does not declare that it reads the {which} set "
                f"(set `reads` on the method class to {hint})"
            )
        return split

    def initial_model(self) -> nn.Module:
        """The original model's initial weights, before it was trained (EU-k resets layers
        to them), on the task's device. Leaves the global RNG state as it was."""
        import torch

        if self.initial_seed is None:
            raise RuntimeError("this task does not know the original model's initial seed")
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            return _fresh_model(self.model_spec, self.device, self.initial_seed)


@dataclass(frozen=True, kw_only=True)
class TrainTask(_Task):
    """What a method's training stage sees: the whole training set (row i is training-set
    position i), never the test set; `state_dir` keeps whatever `unlearn` needs later.

    `budget` is the harness's limit on the whole stage, not the submission's budget."""

    train_set: Split
    state_dir: Path


def _fresh_model(spec: ModelSpec, device: torch.device, seed: int) -> nn.Module:
    import torch

    from .models.registry import build_model

    torch.manual_seed(seed)
    return build_model(spec).to(device)
