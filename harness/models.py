"""Architectures: a registry from `arch` name to a typed parameter model and a builder.

A `ModelSpec` (arch, params, input shape, classes) is plain JSON-able data, so the
harness can rebuild any model it evaluates from the spec alone and load weights with
`torch.load(weights_only=True)`: plugin code never runs in the harness's evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import did_you_mean
from .validation import describe_errors

if TYPE_CHECKING:
    from torch import nn

    from .scenario import Scenario


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    params: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    num_classes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "params": self.params,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(d["arch"], dict(d["params"]), tuple(d["input_shape"]), int(d["num_classes"]))


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MLPParams(_Params):
    hidden: tuple[int, ...] = Field((256, 256), min_length=1)
    dropout: float = Field(0.0, ge=0, lt=1)


def build_mlp(spec: ModelSpec, p: MLPParams) -> nn.Module:
    import math

    from torch import nn

    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(spec.input_shape)
    for h in p.hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if p.dropout:
            layers.append(nn.Dropout(p.dropout))
        width = h
    layers.append(nn.Linear(width, spec.num_classes))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Architecture:
    params: type[BaseModel]
    build: Callable[[ModelSpec, Any], nn.Module]
    summary: str = ""


def _registry() -> dict[str, Architecture]:
    from . import ensemble, nets

    return {
        "mlp": Architecture(MLPParams, build_mlp, "fully connected ReLU network"),
        "cnn1d": Architecture(
            nets.Cnn1dParams, nets.build_cnn1d, "MNIST-1D paper's ConvBase (1-D CNN)"
        ),
        "resnet18": Architecture(
            nets.ResNet18Params, nets.build_resnet18, "ResNet-18, CIFAR stem, SalUn's layout"
        ),
        "ensemble": Architecture(
            ensemble.EnsembleParams, ensemble.build_ensemble, "members of one arch, aggregated"
        ),
    }


ARCHITECTURES: dict[str, Architecture] = _registry()


def _check(arch: str, params: dict[str, Any]) -> tuple[Architecture, Any]:
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture '{arch}'.{did_you_mean(arch, list(ARCHITECTURES))} "
            f"Valid architectures: {', '.join(sorted(ARCHITECTURES))}"
        )
    spec = ARCHITECTURES[arch]
    return spec, spec.params.model_validate(params)


def validate_model_config(scenario: Scenario) -> str | None:
    """A message naming the problem with `[model]`, or None when it is valid."""
    try:
        _check(scenario.model.arch, scenario.model.params)
    except ValidationError as exc:
        arch = ARCHITECTURES[scenario.model.arch]
        return "; ".join(f"model: {line}" for line in describe_errors(arch.params, exc))
    except ValueError as exc:
        return f"'model.arch': {exc}"
    return None


def build_model(spec: ModelSpec) -> nn.Module:
    """A freshly initialised model (use `torch.manual_seed` first for a given init)."""
    arch, params = _check(spec.arch, spec.params)
    return arch.build(spec, params)


def spec_for(scenario: Scenario, input_shape: tuple[int, ...], num_classes: int) -> ModelSpec:
    return ModelSpec(scenario.model.arch, scenario.model.params, tuple(input_shape), num_classes)
