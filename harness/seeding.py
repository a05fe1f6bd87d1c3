"""Seeds: one root seed per scenario, disjoint named streams derived from it.

Gold models, original-model replicas and a method's seeds draw from different streams,
so the `retrain` oracle run with seed i never reproduces gold model i bit for bit.
"""

import hashlib
import random

import numpy as np


def derive_seed(root: int, stream: str, index: int = 0) -> int:
    """A 63-bit seed for item `index` of the named `stream` under `root`."""
    digest = hashlib.sha256(f"{root}:{stream}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
