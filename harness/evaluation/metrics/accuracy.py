"""Top-1 accuracy and per-example cross-entropy (SalUn / Unlearn-Sparse convention:
UA = 1 - forget accuracy, RA = retain accuracy, TA = test accuracy)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label; NaN for an empty set."""
    if len(labels) == 0:
        return float("nan")
    return (logits.argmax(dim=1) == labels).double().mean().item()


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each example (float64), the feature of the loss-based MIA."""
    return F.cross_entropy(logits.double(), labels, reduction="none")
