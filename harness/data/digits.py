"""scikit-learn's bundled digits: 1,797 8x8 images, stratified train/test split by the
scenario's seed; with `validation_fraction` (`[data.options]`), that share of each
class of the training part held out as a validation set (`heldout.carve`). About 30 ms
(plus scikit-learn's import).

`[data.options] examples = N` keeps a stratified subset of N images (drawn with the
scenario's seed) before the split: `digits-tiny`, the scenario `mu-bench check` runs
on, prepares in about a second with it."""

from __future__ import annotations

from pydantic import Field

from ..seeding import derive_seed
from .dataset import DataConfig, Dataset, HeldOutOptions
from .heldout import carve

SUMMARY = "scikit-learn digits, 1,797 8x8 images"


class DigitsOptions(HeldOutOptions):
    # A stratified subset of this many images (all 1,797 when unset).
    examples: int | None = Field(None, ge=50, le=1797)


def build_digits(config: DataConfig, seed: int) -> Dataset:
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0).astype("float32")[:, None, :, :]  # (n, 1, 8, 8) in [0, 1]
    target = bunch.target
    examples = DigitsOptions.model_validate(config.options).examples
    if examples is not None and examples < len(target):
        images, _, target, _ = train_test_split(
            images,
            target,
            train_size=examples,
            stratify=target,
            random_state=derive_seed(seed, "data-subset") % 2**32,
        )
    split_seed = derive_seed(seed, "data-split")
    x_tr, x_te, y_tr, y_te = train_test_split(
        images,
        target,
        test_size=config.test_fraction,
        stratify=target,
        random_state=split_seed % 2**32,
    )
    opts = DigitsOptions.model_validate(config.options)
    x_val = y_val = None
    if opts.validation_fraction > 0:
        keep, val = carve(y_tr, opts.validation_fraction, seed)
        x_val, y_val = torch.from_numpy(x_tr[val]), torch.from_numpy(y_tr[val]).long()
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    return Dataset(
        x_train=torch.from_numpy(x_tr),
        y_train=torch.from_numpy(y_tr).long(),
        x_test=torch.from_numpy(x_te),
        y_test=torch.from_numpy(y_te).long(),
        num_classes=10,
        x_val=x_val,
        y_val=y_val,
    )
