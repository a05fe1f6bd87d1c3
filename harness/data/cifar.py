"""CIFAR-10 / CIFAR-100 through torchvision, split as SalUn / Unlearn-Sparse do.

Protocol (OPTML-Group/Unlearn-Saliency `Classification/dataset.py: cifar10_dataloaders`,
`cifar100_dataloaders`, `replace_class`): from the 50,000 training images,
`np.random.RandomState(split_seed)` draws `int(0.1 * n_c)` images of each class c in
turn as a validation set; the other 45,000, in their original order, are the training
set. A random forget set is `RandomState(split_seed - 1).choice(45000, k,
replace=False)` (4,500 = 10%); a class forget set is every training image of the class.
The 10,000 test images are the test set. `split_seed` defaults to 2, SalUn's `--seed`,
so the forget indices are the ones SalUn's scripts use. The validation images are held
out: never trained on, never scored, handed only to a method that declares it reads a
validation set (SCRUB+R rewinds on it).

Deviation: with default arguments SalUn's `main_train.py` trains the original model
on the split of `cifar10_dataloaders`' own default seed (1), while its unlearning
scripts split with `--seed` (2), so about 4,500 images of the unlearning training set
(about 450 of them in a 10% forget set) were never in the original model's training
set. mu-bench trains the original model on exactly the training set it asks methods
to unlearn from.

Images are float32 in [0, 1], (3, 32, 32), as torchvision's `ToTensor` gives them;
the model normalises. Memory: 50,000 images take 600 MB as float32 (uint8 would be
150 MB, but every consumer, methods included, would then need to convert; the GPU
machines this scenario is for have the memory). Files are read from
`<data root>/cifar-10-batches-py` (or `cifar-100-python`), torchvision's layout, with
`download=False`: nothing here touches the network. torchvision checks each file's MD5
against the official archive's; `verify_md5 = false` skips that for files in the same
format made elsewhere (tests write tiny ones), and the loaded contents are then hashed
into the cache key instead. Loading CIFAR-10 takes about 1-2 s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import UsageError
from ..paths import DATA_ENV, data_root
from .dataset import DataConfig, Dataset

# dataset name -> (torchvision class, folder under the root, number of classes)
_SPECS = {
    "cifar10": ("CIFAR10", "cifar-10-batches-py", 10),
    "cifar100": ("CIFAR100", "cifar-100-python", 100),
}


def num_classes(name: str) -> int:
    return _SPECS[name][2]


SUMMARIES = {
    "cifar10": "CIFAR-10 via torchvision: 45,000 train (SalUn split), 10,000 test, 32x32 RGB",
    "cifar100": "CIFAR-100 via torchvision: 45,000 train (SalUn split), 10,000 test, 32x32 RGB",
}


class CifarOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    validation_fraction: float = Field(0.1, ge=0, lt=1)  # per class, held out
    split_seed: int = Field(2, ge=1, lt=2**32)  # SalUn's --seed; forget draw uses seed - 1
    verify_md5: bool = True  # torchvision's checksums of the official files


def salun_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: per class in turn, RandomState(seed) draws the
    validation images; the training indices stay in ascending order (SalUn's
    `list(set(range(n)) - set(valid_idx))` iterates small ints in ascending order)."""
    rng = np.random.RandomState(seed)
    valid = [
        rng.choice(np.flatnonzero(labels == c), int(fraction * np.sum(labels == c)), replace=False)
        for c in range(int(labels.max()) + 1)
    ]
    valid_idx = np.sort(np.hstack(valid).astype(np.int64))
    return np.setdiff1d(np.arange(len(labels)), valid_idx), valid_idx


def salun_forget_draw(seed: int) -> Callable[[int, int], np.ndarray]:
    """SalUn's random forget set: `RandomState(seed - 1).choice(n, k, replace=False)`."""

    def draw(n: int, k: int) -> np.ndarray:
        return np.random.RandomState(seed - 1).choice(n, k, replace=False)

    return draw


def _missing_message(name: str, root: Path, missing: list[str]) -> str:
    folder = _SPECS[name][1]
    return (
        f"{name} not found: {root / folder} lacks {', '.join(missing)}. On a machine with "
        f"internet run `mu-bench download {name} --data-root {root}`, then point mu-bench at "
        f"that folder with --data-root or the {DATA_ENV} environment variable "
        f"(now {root})."
    )


def _torchvision_class(name: str, verify: bool):
    from torchvision import datasets

    cls = getattr(datasets, _SPECS[name][0])
    if verify:
        return cls
    # Same loader, no checksums: torchvision's check_integrity(path, None) only asks that
    # the file exists.
    return type(
        f"Unverified{cls.__name__}",
        (cls,),
        {
            "train_list": [[f, None] for f, _ in cls.train_list],
            "test_list": [[f, None] for f, _ in cls.test_list],
            "meta": {**cls.meta, "md5": None},
        },
    )


def _read(name: str, root: Path, verify: bool):
    """(train images, train labels, test images, test labels) as uint8 NHWC and int64."""
    cls = _torchvision_class(name, verify)
    folder = root / _SPECS[name][1]
    files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise UsageError(_missing_message(name, root, missing))
    try:
        train = cls(str(root), train=True, download=False)
        test = cls(str(root), train=False, download=False)
    except RuntimeError as exc:  # torchvision: "not found or corrupted" (an MD5 mismatch)
        raise UsageError(
            f"{name} under {folder} failed torchvision's check ({exc}). Re-download it with "
            f"`mu-bench download {name} --data-root {root}`; for files in the same format "
            "made elsewhere, set `verify_md5 = false` under [data.options]."
        ) from None
    return (
        np.asarray(train.data),
        np.asarray(train.targets, dtype=np.int64),
        np.asarray(test.data),
        np.asarray(test.targets, dtype=np.int64),
    )


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()[:32]


def builder(name: str) -> Callable[[DataConfig, int], Dataset]:
    def build(config: DataConfig, seed: int) -> Dataset:
        import torch

        opts = CifarOptions.model_validate(config.options)
        x_tr, y_tr, x_te, y_te = _read(name, data_root(), opts.verify_md5)
        train_idx, valid_idx = salun_split(y_tr, opts.validation_fraction, opts.split_seed)
        x_val, y_val = x_tr[valid_idx], y_tr[valid_idx]
        x_tr, y_tr = x_tr[train_idx], y_tr[train_idx]

        def images(x: np.ndarray) -> torch.Tensor:  # uint8 NHWC -> float32 NCHW in [0, 1]
            return torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0).contiguous()

        return Dataset(
            x_train=images(x_tr),
            y_train=torch.from_numpy(y_tr),
            x_test=images(x_te),
            y_test=torch.from_numpy(y_te),
            num_classes=_SPECS[name][2],
            fingerprint="" if opts.verify_md5 else _fingerprint(x_tr, y_tr, x_te, y_te),
            draw_forget=salun_forget_draw(opts.split_seed),
            x_val=images(x_val) if len(valid_idx) else None,
            y_val=torch.from_numpy(y_val) if len(valid_idx) else None,
        )

    return build


def downloader(name: str) -> Callable[[Path], None]:
    def download(root: Path) -> None:
        cls = _torchvision_class(name, verify=True)
        try:
            cls(str(root), train=True, download=True)
            cls(str(root), train=False, download=True)
        except (OSError, RuntimeError) as exc:  # no network, refused, bad archive
            raise UsageError(
                f"downloading {name} into {root} failed: {type(exc).__name__}: {exc}. "
                "This needs internet access; or copy torchvision's "
                f"{_SPECS[name][1]}/ folder there by hand."
            ) from None

    return download
