"""Tiny CIFAR-10/100 folders in torchvision's on-disk format, and scenario files for them.

The official files are Python 2 pickles of dicts; under torchvision's
`pickle.load(f, encoding="latin1")` their keys load as `str` ('data', 'labels' or
'fine_labels', 'batch_label', 'filenames'), 'data' is a uint8 array (N, 3072) in
channel-major order (1,024 red, then green, then blue values per image), labels are a
list of ints, and `batches.meta` / `meta` hold the class names. These files have the
same names, keys, dtypes and shapes, so torchvision's own loader reads them; only the
MD5 sums differ, so scenarios using them set `verify_md5 = false`.
"""

from __future__ import annotations

import pickle
from importlib import resources
from pathlib import Path

import numpy as np
import tomllib

CIFAR10_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, 3072): a per-class colour plus noise, so tiny models can learn them."""
    colours = np.random.default_rng(0).integers(0, 256, size=(int(labels.max()) + 1, 3))
    base = np.repeat(colours[labels][:, :, None], 1024, axis=2).astype(np.int64)
    noisy = base + rng.integers(-40, 41, size=base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8).reshape(len(labels), 3072)


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def _labels(classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(classes), per_class))


def write_cifar10(root: Path, train_per_class: int = 20, test_per_class: int = 5, seed: int = 0):
    """`root/cifar-10-batches-py/`: data_batch_1..5, test_batch, batches.meta.
    Returns (train uint8 (N, 3072), train labels, test uint8, test labels)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    y_train = _labels(10, train_per_class, rng)
    x_train = _images(y_train, rng)
    for b, idx in enumerate(np.array_split(np.arange(len(y_train)), 5), start=1):
        _dump(
            folder / f"data_batch_{b}",
            {
                "batch_label": f"training batch {b} of 5",
                "labels": [int(v) for v in y_train[idx]],
                "data": x_train[idx],
                "filenames": [f"img_{i}.png" for i in idx],
            },
        )
    y_test = _labels(10, test_per_class, rng)
    x_test = _images(y_test, rng)
    _dump(
        folder / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": [int(v) for v in y_test],
            "data": x_test,
            "filenames": [f"test_{i}.png" for i in range(len(y_test))],
        },
    )
    _dump(
        folder / "batches.meta",
        {"num_cases_per_batch": len(y_train) // 5, "label_names": CIFAR10_NAMES, "num_vis": 3072},
    )
    return x_train, y_train, x_test, y_test


def write_cifar100(root: Path, train_per_class: int = 10, test_per_class: int = 2, seed: int = 0):
    """`root/cifar-100-python/`: train, test, meta (fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        y = _labels(100, per_class, rng)
        _dump(
            folder / split,
            {
                "filenames": [f"{split}_{i}.png" for i in range(len(y))],
                "batch_label": f"{split} batch 1 of 1",
                "fine_labels": [int(v) for v in y],
                "coarse_labels": [int(v) // 5 for v in y],
                "data": _images(y, rng),
            },
        )
    _dump(
        folder / "meta",
        {
            "fine_label_names": [f"class_{i}" for i in range(100)],
            "coarse_label_names": [f"super_{i}" for i in range(20)],
        },
    )


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return repr(v)


def to_toml(doc: dict) -> str:
    """TOML for a scenario dict: top-level scalars, then one table per section."""
    head = [f"{k} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    tables = [
        f"[{k}]\n" + "\n".join(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())
        for k, v in doc.items()
        if isinstance(v, dict)
    ]
    return "\n".join(head) + "\n\n" + "\n\n".join(tables) + "\n"


def builtin(name: str) -> dict:
    return tomllib.loads((resources.files("mu_bench") / "scenarios" / f"{name}.toml").read_text())


def tiny_variant(name: str, folder: Path, width: int = 4) -> Path:
    """The built-in CIFAR scenario with a narrow ResNet-18, 1 epoch, 2 gold models and
    unverified files; split protocol, forget rule and recipe otherwise unchanged."""
    doc = builtin(name)
    doc["name"] = f"{name}-tiny"
    doc["data"]["options"] = {**doc["data"].get("options", {}), "verify_md5": False}
    if doc["forget"]["rule"] == "random":
        doc["forget"] = {"rule": "random", "fraction": 0.1}  # 4,500 of 45,000 is 10%
    doc["model"]["width"] = width
    doc["train"].update(epochs=1, batch_size=64)
    doc["gold"] = {"seeds": 2}
    path = folder / f"{name}-tiny.toml"
    path.write_text(to_toml(doc))
    return path
