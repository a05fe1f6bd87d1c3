"""Architectures: one registry from `arch` name to its typed parameters and builder.

`build_model(spec)` gives a freshly initialised model (`torch.manual_seed` first for a
given initialisation); `validate` checks a scenario's `[model]` section without
importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import did_you_mean
from ..validation import describe_errors
from .params import Cnn1dParams, EnsembleParams, MLPParams, ModelConfig, Params, ResNet18Params
from .spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Architecture:
    params: type[Params]
    build: Callable[[ModelSpec, Any], nn.Module]
    summary: str = ""


def _networks(name: str) -> Callable[[ModelSpec, Any], nn.Module]:
    """A builder from `networks.py`, imported (with torch) on first use."""

    def build(spec: ModelSpec, params: Any) -> nn.Module:
        from . import networks

        return getattr(networks, name)(spec, params)

    return build


def _build_ensemble(spec: ModelSpec, p: EnsembleParams) -> nn.Module:
    from .networks import Ensemble

    member = ModelSpec(p.member_arch, p.member_params, spec.input_shape, spec.num_classes)
    members = [build_model(member) for _ in range(p.members)]
    return Ensemble(members, spec.num_classes, p.aggregation)


ARCHITECTURES: dict[str, Architecture] = {
    "mlp": Architecture(MLPParams, _networks("build_mlp"), "fully connected ReLU network"),
    "cnn1d": Architecture(
        Cnn1dParams, _networks("build_cnn1d"), "MNIST-1D paper's ConvBase (1-D CNN)"
    ),
    "resnet18": Architecture(
        ResNet18Params, _networks("build_resnet18"), "ResNet-18, CIFAR stem, SalUn's layout"
    ),
    "ensemble": Architecture(EnsembleParams, _build_ensemble, "members of one arch, aggregated"),
}


def _check(arch: str, params: dict[str, Any]) -> tuple[Architecture, Any]:
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture '{arch}'.{did_you_mean(arch, list(ARCHITECTURES))} "
            f"Valid architectures: {', '.join(sorted(ARCHITECTURES))}"
        )
    spec = ARCHITECTURES[arch]
    return spec, spec.params.model_validate(params)


def validate(config: ModelConfig) -> str | None:
    """A message naming the problem with a `[model]` section, or None when it is valid."""
    try:
        _check(config.arch, config.params)
    except ValidationError as exc:
        arch = ARCHITECTURES[config.arch]
        return "; ".join(f"model: {line}" for line in describe_errors(arch.params, exc))
    except ValueError as exc:
        return f"'model.arch': {exc}"
    return None


def build_model(spec: ModelSpec) -> nn.Module:
    """A freshly initialised model (use `torch.manual_seed` first for a given init)."""
    arch, params = _check(spec.arch, spec.params)
    return arch.build(spec, params)


def spec_for(config: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> ModelSpec:
    return ModelSpec(config.arch, config.params, tuple(input_shape), num_classes)
