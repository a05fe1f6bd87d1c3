"""Gradients for methods that work on flat gradient vectors (influence unlearning,
Scissorhands' projection). The Fisher diagonal is `fisher.py`.

Per-sample gradients come from `torch.func`: `vmap` over `grad` of a `functional_call`
of the model, which computes a whole chunk of samples in one batched pass instead of
one backward pass per sample, as the original batch-size-1 loops do, with the same
result (`benchmarks/per_sample_grads.py` measures both). The model must be in eval mode
(BatchNorm on running statistics, as in the originals). `chunk_size` keeps a chunk's
gradients within 16 MiB on a CPU (small chunks ran faster there, as for the Fisher in
`fisher.py`) and 1 GiB on a GPU.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

_CHUNK_FLOATS = {"cpu": 2**22, "cuda": 2**28}  # float32 per chunk of per-sample gradients


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def chunk_size(model: nn.Module) -> int:
    """Samples per chunk so that one gradient of each fits the device's cap."""
    device = next(model.parameters()).device.type
    return max(1, _CHUNK_FLOATS.get(device, _CHUNK_FLOATS["cpu"]) // n_params(model))


def _single_sample_logits(model: nn.Module):
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def logits(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (p, buffers), (x.unsqueeze(0),)).squeeze(0)

    return params, logits


def per_sample_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, P): the gradient of each sample's cross-entropy, flattened in
    `model.parameters()` order."""
    params, logits = _single_sample_logits(model)

    def loss(p, xi, yi):
        return F.cross_entropy(logits(p, xi).unsqueeze(0), yi.unsqueeze(0))

    g = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g[k].reshape(len(x), -1) for k in params], dim=1)


def flat_grad(params: Iterable[nn.Parameter]) -> torch.Tensor:
    """The `.grad` of each parameter (zeros where there is none), flattened in order."""
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    )
