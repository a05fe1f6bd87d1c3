"""MNIST-1D (Greydanus 2020), generated locally by the `mnist1d` package.

`make_dataset(get_dataset_args())` builds the ten 1-D digit templates, applies the
package's random padding, translation, shear, scaling and noise, standardises the whole
set and keeps the first `train_split` share for training: with the defaults, 4,000
training and 1,000 test signals of length 40 (400 per class in training, about 100 in
test). The generator is seeded by `options.seed`, default 42, the package's own default,
which the MNIST-1D paper's results use; the scenario's seed still draws the forget set
and the models. With `validation_fraction`, that share of each class of the training
signals is held out as a validation set (`heldout.carve`). The package's `get_dataset`
(which downloads a pickle first) is never called. Generation takes about 2 s on two CPU
cores (plus about 1.5 s to import scipy and matplotlib, which the package needs); the
result is memoised per process.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from .dataset import DataConfig, Dataset
from .heldout import carve

if TYPE_CHECKING:
    import numpy as np

SUMMARY = "MNIST-1D, generated locally (mnist1d package): 4,000 + 1,000 signals of length 40"


class Mnist1dOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(42, ge=0, lt=2**32)  # the package default: the paper's dataset
    num_samples: int = Field(5000, ge=100)  # before the train/test split; 10 classes
    # Held out of the training signals per class as a validation set; 0: none.
    validation_fraction: float = Field(0.0, ge=0, lt=1)


@functools.lru_cache(maxsize=4)
def _generate(seed: int, num_samples: int, train_split: float) -> dict[str, np.ndarray]:
    import random

    import numpy as np
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed, args.num_samples, args.train_split = seed, num_samples, train_split
    # make_dataset seeds the global `random` and NumPy generators: leave them as we found them.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: data[k] for k in ("x", "y", "x_test", "y_test")}


def build_mnist1d(config: DataConfig, seed: int) -> Dataset:
    import torch

    opts = Mnist1dOptions.model_validate(config.options)
    d = _generate(opts.seed, opts.num_samples, 1.0 - config.test_fraction)

    def signals(x: np.ndarray) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.float32).unsqueeze(1)  # (n, 1, 40)

    x, y = d["x"], d["y"]
    x_val = y_val = None
    if opts.validation_fraction > 0:
        keep, val = carve(y, opts.validation_fraction, seed)
        x_val, y_val = signals(x[val]), torch.tensor(y[val], dtype=torch.long)
        x, y = x[keep], y[keep]
    return Dataset(
        x_train=signals(x),
        y_train=torch.tensor(y, dtype=torch.long),
        x_test=signals(d["x_test"]),
        y_test=torch.tensor(d["y_test"], dtype=torch.long),
        num_classes=10,
        x_val=x_val,
        y_val=y_val,
    )
