"""Batched training augmentation on the data's own device (no per-image Python loop).

`crop-flip`: random crop with 4-pixel zero padding and a horizontal flip with p = 0.5,
the standard CIFAR recipe (RandomCrop(32, padding=4) + RandomHorizontalFlip).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_flip(x: torch.Tensor, generator: torch.Generator | None, pad: int = 4) -> torch.Tensor:
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)[None, :]  # (n, h)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def apply_augment(x: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    if kind == "none":
        return x
    if kind == "crop-flip":
        return crop_flip(x, generator)
    raise ValueError(f"unknown augmentation '{kind}' (valid: none, crop-flip)")
