"""A loaded dataset, the `[data]` section that asks for one, and what a builder is.

Images are float32 tensors in [0, 1] shaped (C, H, W); models normalise inside
themselves (the SalUn convention), so methods that perturb inputs in pixel space see the
real pixel range. MNIST-1D is a 1-D signal shaped (1, 40), standardised by its generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np
    import torch


class DataConfig(BaseModel):
    """A scenario's `[data]` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    test_fraction: float = Field(0.2, gt=0, lt=1)
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor  # int64 labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    # Content hash of the loaded files when the scenario alone does not fix them (files
    # not checked against known checksums); part of the cache key when set.
    fingerprint: str = ""
    # The protocol's own draw of k random forget indices out of n (SalUn's RandomState),
    # used by `forget.make_split` instead of mu-bench's seeded draw when set.
    draw_forget: Callable[[int, int], np.ndarray] | None = None
    # A validation set held out of the training data (SalUn's CIFAR split, or one carved
    # by `heldout.carve` where the scenario asks): never trained on by the original or
    # gold models, never the test set; None when the scenario has none.
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeldOutOptions(BaseModel):
    """Options of a dataset that ships no validation set: `validation_fraction` of each
    class of the training data is held out as one (`heldout.carve`); 0, the default,
    holds out nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    validation_fraction: float = Field(0.0, ge=0, lt=1)


@dataclass(frozen=True)
class DatasetBuilder:
    """`build(config, seed)`: the dataset, deterministic under the scenario's root seed
    and the builder's own options (validated against `options`)."""

    build: Callable[[DataConfig, int], Dataset]
    options: type[BaseModel] = NoOptions
    summary: str = ""
    download: Callable[[Path], None] | None = None  # fetch the files into a data root
    fixed_test_set: bool = False  # the dataset ships its own test set: no `test_fraction`
    # What every example looks like and how many classes there are, known without
    # loading anything: a submission's model spec is resolved at plan time from these
    # (`prepare` checks them against the loaded data).
    input_shape: tuple[int, ...] = ()
    num_classes: int = 0
    # Small and built from no files of its own: `prepare` keeps the built tensors in the
    # artifact cache, so that a cache hit skips the builder (and its imports).
    cacheable: bool = False
