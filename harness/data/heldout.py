"""A validation set carved from the training data, for datasets that ship none.

`carve(labels, fraction, seed)` holds out `int(fraction * n_c)` examples of each class
c, drawn with a generator seeded from the scenario's seed, before the forget set is
drawn and before any model is trained: the original model, the gold models and every
method then see only the rest. It is the per-class draw SalUn's and SCRUB's splits make
(`salun_split` for CIFAR, SCRUB `datasets.py: get_loaders` with 20%), with mu-bench's
seeded generator instead of their `RandomState`. Methods get it only when they declare
it (`reads` with "validation"); it is never the test set.
"""

from __future__ import annotations

import numpy as np

from ..seeding import derive_seed


def carve(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions into `labels`, both ascending; `fraction` of each
    class (rounded down) goes to validation."""
    rng = np.random.default_rng(derive_seed(seed, "validation-split"))
    held = [
        rng.choice(np.flatnonzero(labels == c), int(fraction * np.sum(labels == c)), replace=False)
        for c in np.unique(labels)
    ]
    valid = np.sort(np.concatenate(held).astype(np.int64)) if held else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(labels)), valid), valid
