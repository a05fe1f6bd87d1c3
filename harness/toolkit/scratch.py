"""Training one of a scenario's own models from scratch: the one function that `prepare`
(in process) and a worker's `TrainModelRequest` (on any executor) both call, so the
original, gold and IN models come out the same wherever they are trained."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from ..device import synchronize
from ..models.registry import build_model
from .training import fit, warm_up

if TYPE_CHECKING:
    from torch import nn

    from ..data.split import Split
    from ..models.spec import ModelSpec
    from .recipe import TrainConfig


def train_from_scratch(
    spec: ModelSpec,
    train_set: Split,
    recipe: TrainConfig,
    seed: int,
    device: str,
    threads: int | None = None,
) -> tuple[nn.Module, float]:
    """A fresh model of `spec`, initialised and shuffled with `seed`, trained on
    `train_set` with `recipe`; and the training's wall time (seconds, synchronised on a
    GPU; torch's one-off lazy imports paid before the clock starts). `threads`: torch's
    threads for the call (restored after): the result depends on them in the last bits."""
    if threads is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return train_from_scratch(spec, train_set, recipe, seed, device)
        finally:
            torch.set_num_threads(before)
    torch.manual_seed(seed)
    model = build_model(spec).to(device)
    generator = torch.Generator().manual_seed(seed)
    on_device = train_set.to(device)
    warm_up()
    synchronize(device)
    start = time.perf_counter()
    fit(model, on_device, recipe, generator=generator)
    synchronize(device)
    return model, time.perf_counter() - start
