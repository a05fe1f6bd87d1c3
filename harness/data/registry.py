"""Dataset builders by name: each deterministic under the scenario's seed, all offline.

- `digits`: scikit-learn's bundled 1,797 8x8 images (or a stratified subset), about 30 ms.
- `mnist1d`: generated locally by the `mnist1d` package (`mnist1d.py`), about 2 s.
- `cifar10`, `cifar100`: torchvision's files under the data root, SalUn's 45k/5k split
  (`cifar.py`); `mu-bench download` fetches them on a machine with internet.

Each takes `validation_fraction` under `[data.options]`: the share of each class held
out of the training data as a validation set (CIFAR: SalUn's 10% by default; digits and
MNIST-1D: 0, none, unless the scenario asks).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import did_you_mean
from ..validation import describe_errors
from . import cifar, digits, mnist1d
from .dataset import DataConfig, Dataset, DatasetBuilder

DATASETS: dict[str, DatasetBuilder] = {
    "digits": DatasetBuilder(
        digits.build_digits,
        digits.DigitsOptions,
        digits.SUMMARY,
        input_shape=(1, 8, 8),
        num_classes=10,
        cacheable=True,
    ),
    "mnist1d": DatasetBuilder(
        mnist1d.build_mnist1d,
        mnist1d.Mnist1dOptions,
        mnist1d.SUMMARY,
        input_shape=(1, 40),
        num_classes=10,
        cacheable=True,
    ),
    **{
        name: DatasetBuilder(
            cifar.builder(name),
            cifar.CifarOptions,
            cifar.SUMMARIES[name],
            download=cifar.downloader(name),
            fixed_test_set=True,
            input_shape=(3, 32, 32),
            num_classes=cifar.num_classes(name),
        )
        for name in cifar.SUMMARIES
    },
}


def validate(config: DataConfig) -> str | None:
    """A message naming the problem with a `[data]` section, or None when it is valid."""
    name = config.dataset
    if name not in DATASETS:
        return (
            f"'data.dataset': unknown dataset '{name}'.{did_you_mean(name, list(DATASETS))} "
            f"Valid datasets: {', '.join(sorted(DATASETS))}"
        )
    try:
        DATASETS[name].options.model_validate(config.options)
    except ValidationError as exc:
        return "; ".join(
            f"data.options: {line}" for line in describe_errors(DATASETS[name].options, exc)
        )
    if DATASETS[name].fixed_test_set and "test_fraction" in config.model_fields_set:
        return (
            f"'data.test_fraction': {name} ships its own test set; remove 'test_fraction' "
            "(the held-out validation share is 'data.options.validation_fraction')"
        )
    return None


def options(config: DataConfig) -> Any:
    """The dataset's typed options (`[data.options]`)."""
    return DATASETS[config.dataset].options.model_validate(config.options)


def signature(config: DataConfig) -> tuple[tuple[int, ...], int]:
    """(input shape, number of classes) of a dataset, without loading it."""
    builder = DATASETS[config.dataset]
    return builder.input_shape, builder.num_classes


def has_validation(config: DataConfig) -> bool:
    """Whether a (valid) `[data]` section gives the dataset a validation set: its
    `validation_fraction` option is above 0 (CIFAR's is 0.1 by default, SalUn's)."""
    return getattr(options(config), "validation_fraction", 0.0) > 0


def build_dataset(config: DataConfig, seed: int) -> Dataset:
    return DATASETS[config.dataset].build(config, seed)


def cacheable(config: DataConfig) -> bool:
    """Whether the dataset may be kept in the artifact cache (see `DatasetBuilder`)."""
    return DATASETS[config.dataset].cacheable
