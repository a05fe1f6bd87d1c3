"""Stages of any architecture, in forward order, for methods that act on "the last k
layers" (CF-k, EU-k, Scissorhands' reset filter).

The original code names ResNet stages (`layer3`, `layer4`, `fc`); a benchmark must run
those methods on every architecture it builds. A *stage* is a top-level child module
that holds parameters, in registration order, which is forward order for every mu-bench
architecture: ResNet-18 has `conv1, bn1, layer1, layer2, layer3, layer4, fc`; the digits
MLP (an `nn.Sequential`) has `1, 3, 5` (its Linear layers); MNIST-1D's ConvBase has
`conv1, conv2, conv3, linear`. So the last three stages of ResNet-18 are exactly the
original filter `layer3/layer4/fc`.
"""

from __future__ import annotations

from torch import nn

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def stages(model: nn.Module) -> list[str]:
    """Names of the top-level children that hold parameters, in forward order."""
    return [
        name for name, child in model.named_children() if next(child.parameters(), None) is not None
    ]


def last_stages(model: nn.Module, k: int) -> list[str]:
    """The names of the last `k` stages (all of them when `k` exceeds their number)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return stages(model)[-k:]


def stage_parameters(
    model: nn.Module, names: list[str], *, skip_norm: bool = False
) -> dict[str, nn.Parameter]:
    """Parameters of the named stages by full name (`layer4.0.conv1.weight`), optionally
    without those of normalisation layers (Scissorhands resets no BatchNorm)."""
    chosen = set(names)
    unknown = chosen - set(stages(model))
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; this model has {stages(model)}")
    out: dict[str, nn.Parameter] = {}
    for module_name, module in model.named_modules():
        top = module_name.split(".", 1)[0]
        if top not in chosen or (skip_norm and isinstance(module, NORM_TYPES)):
            continue
        for pname, p in module.named_parameters(recurse=False):
            out[f"{module_name}.{pname}"] = p
    return out
