"""Dataset builders: a registry of functions that return train/test tensors.

Every builder is deterministic under the scenario seed (and its own options) and works
offline. Images are float32 tensors in [0, 1] shaped (C, H, W); models normalise inside
themselves (the SalUn convention), so methods that perturb inputs in pixel space see the
real pixel range. MNIST-1D is a 1-D signal shaped (1, 40), standardised by its generator.

- `digits`: scikit-learn's bundled 1,797 8x8 images, about 30 ms.
- `mnist1d`: generated locally by the `mnist1d` package (`data_mnist1d.py`), about 2 s.
- `cifar10`, `cifar100`: torchvision's files under the data root, SalUn's 45k/5k split
  (`data_cifar.py`); `mu-bench download` fetches them on a machine with internet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import did_you_mean
from .seeding import derive_seed
from .validation import describe_errors

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .scenario import Scenario


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
    # used by `splits.make_split` instead of mu-bench's seeded draw when set.
    draw_forget: Callable[[int, int], np.ndarray] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class DatasetBuilder:
    build: Callable[[Scenario], Dataset]
    options: type[BaseModel] = NoOptions
    summary: str = ""
    download: Callable[[Path], None] | None = None  # fetch the files into a data root
    fixed_test_set: bool = False  # the dataset ships its own test set: no `test_fraction`


def _stratified_split(x, y, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=seed % 2**32)


def build_digits(scenario: Scenario) -> Dataset:
    import torch
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype("float32")[:, None, :, :]  # (n, 1, 8, 8) in [0, 1]
    split_seed = derive_seed(scenario.seed, "data-split")
    x_tr, x_te, y_tr, y_te = _stratified_split(
        images, bunch.target, scenario.data.test_fraction, split_seed
    )
    return Dataset(
        x_train=torch.from_numpy(x_tr),
        y_train=torch.from_numpy(y_tr).long(),
        x_test=torch.from_numpy(x_te),
        y_test=torch.from_numpy(y_te).long(),
        num_classes=10,
    )


def _registry() -> dict[str, DatasetBuilder]:
    from . import data_cifar, data_mnist1d

    cifar = {
        name: DatasetBuilder(
            data_cifar.builder(name),
            data_cifar.CifarOptions,
            data_cifar.SUMMARIES[name],
            download=data_cifar.downloader(name),
            fixed_test_set=True,
        )
        for name in data_cifar.SUMMARIES
    }
    return {
        "digits": DatasetBuilder(build_digits, summary="scikit-learn digits, 1,797 8x8 images"),
        "mnist1d": DatasetBuilder(
            data_mnist1d.build_mnist1d, data_mnist1d.Mnist1dOptions, data_mnist1d.SUMMARY
        ),
        **cifar,
    }


DATASETS: dict[str, DatasetBuilder] = _registry()


def validate_data_config(scenario: Scenario) -> str | None:
    """A message naming the problem with `[data]`, or None when it is valid."""
    name = scenario.data.dataset
    if name not in DATASETS:
        return (
            f"'data.dataset': unknown dataset '{name}'.{did_you_mean(name, list(DATASETS))} "
            f"Valid datasets: {', '.join(sorted(DATASETS))}"
        )
    try:
        DATASETS[name].options.model_validate(scenario.data.options)
    except ValidationError as exc:
        return "; ".join(
            f"data.options: {line}" for line in describe_errors(DATASETS[name].options, exc)
        )
    if DATASETS[name].fixed_test_set and "test_fraction" in scenario.data.model_fields_set:
        return (
            f"'data.test_fraction': {name} ships its own test set; remove 'test_fraction' "
            "(the held-out validation share is 'data.options.validation_fraction')"
        )
    return None


def dataset_options(scenario: Scenario) -> Any:
    return DATASETS[scenario.data.dataset].options.model_validate(scenario.data.options)


def build_dataset(scenario: Scenario) -> Dataset:
    return DATASETS[scenario.data.dataset].build(scenario)
