"""`Split`: a labelled set of examples held as tensors on one device, batched by index.

What a method gets as `task.forget`, `task.retain` and `task.train_set`, and what the
training loop (`mu_bench.toolkit.training.fit`) iterates over. Data stays on the device
and batches are gathered by index (no DataLoader); augmentation runs on the device.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    x: torch.Tensor
    y: torch.Tensor
    augment: str = "none"  # the scenario's training augmentation, applied by `batches`

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device), self.augment)

    def subset(self, index: torch.Tensor) -> Split:
        """The rows at `index`, with the same augmentation."""
        return Split(self.x[index], self.y[index], self.augment)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        augment: bool = False,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Minibatches (x, y); `augment=True` applies the scenario's training augmentation."""
        from .augment import apply_augment

        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(self.x.device)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            x = self.x[idx]
            if augment and self.augment != "none":
                x = apply_augment(x, self.augment, generator)
            yield x, self.y[idx]
