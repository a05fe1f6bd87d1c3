"""The diagonal of the true Fisher information of a classifier, computed exactly.

F_ii = (1/n) sum_x sum_y p(y|x) (d log p(y|x) / d theta_i)^2: the expectation is over the
model's own predictive distribution (nngeometry's `FIM(..., variant="classif_logits")`,
which PBU uses), not the empirical Fisher of the true labels. Per-example, per-class
gradients come from `torch.func` (`vmap` over examples of `jacrev` over classes, on a
`functional_call` of the model in eval mode), in chunks sized to hold about
`memory_bytes` of gradients at once (default 64 MiB on a CPU, 2 GiB on a GPU): 19
examples per chunk for the digits MLP (85k parameters, 10 classes), where the 145 images
of one digit take about 0.9 s on one CPU thread, 1.5x faster than a Python loop of one
`autograd.grad` per (example, class) (1.3x on a narrow ResNet-18; `benchmarks/fisher.py`).
GPU timings have not been measured.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap


def diagonal_fisher(
    model: nn.Module,
    x: torch.Tensor,
    *,
    memory_bytes: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, torch.Tensor]:
    """The true Fisher's diagonal at the model's current weights, one tensor per named
    parameter, averaged over the rows of `x`. `should_stop()` is asked after each chunk:
    once it says so, the average is over the rows done so far (at least one chunk). The
    model is put in eval mode (BatchNorm uses its running statistics)."""
    model.eval()
    params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    buffers = {k: b.detach() for k, b in model.named_buffers()}

    def log_probs(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (p, buffers), (xi.unsqueeze(0),)).squeeze(0).log_softmax(-1)

    per_example = vmap(jacrev(log_probs), in_dims=(None, 0))  # {name: (b, classes, *shape)}
    fisher = {k: torch.zeros_like(p) for k, p in params.items()}
    if len(x) == 0:
        return fisher
    with torch.no_grad():
        classes = model(x[:1]).shape[-1]
    n_params = sum(p.numel() for p in params.values())
    if memory_bytes is None:
        memory_bytes = 2**31 if x.is_cuda else 2**24
    chunk = max(1, memory_bytes // (4 * classes * n_params))
    seen = 0
    for start in range(0, len(x), chunk):
        xb = x[start : start + chunk]
        seen += len(xb)
        jac = per_example(params, xb)
        with torch.no_grad():
            probs = functional_call(model, (params, buffers), (xb,)).softmax(-1)  # (b, classes)
            for k, j in jac.items():
                fisher[k] += torch.einsum("bc,bc...->...", probs, j.square())
        if should_stop():
            break
    return {k: f / seen for k, f in fisher.items()}
