"""Parameters and builders of the `cnn1d` and `resnet18` architectures (modules in
`networks.py`, imported only when a model is built).

`cnn1d` is the MNIST-1D paper's `ConvBase` (greydanus/mnist1d `notebooks/models.py`):
three 1-D convolutions of 25 channels (kernel 5 stride 2 padding 1, then kernel 3 stride
2 padding 1 twice), ReLU after each, and a linear classifier on the flattened features
(25 x 5 = 125 for length-40 signals); about 5,000 parameters.

`resnet18` is ResNet-18 as the SalUn-family code builds it for CIFAR
(OPTML-Group/Unlearn-Saliency `Classification/models/ResNet.py`): a
`NormalizeByChannelMeanStd` first layer (`normalize`, buffers `mean` and `std`), a 3x3
stride-1 `conv1` and no max-pool (`stem = "cifar"`), torchvision's `BasicBlock`s in
`layer1`..`layer4` and `fc`; parameter names are torchvision's, so SalUn checkpoints and
layer-name filters (Scissorhands, SalUn masks) apply unchanged. `stem = "imagenet"` is
torchvision's 7x7/2 stem with max-pool, the NeurIPS 2023 starting kit's model. `width`
scales every stage (64 = ResNet-18; narrow widths make CPU test variants).
Initialisation is torchvision's (Kaiming normal, fan_out, for convolutions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import UsageError

if TYPE_CHECKING:
    from torch import nn

    from .models import ModelSpec

# SalUn's NormalizeByChannelMeanStd values (utils.setup_model_dataset).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cnn1dParams(_Params):
    channels: int = Field(25, ge=1)


class ResNet18Params(_Params):
    width: int = Field(64, ge=1)
    stem: Literal["cifar", "imagenet"] = "cifar"
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD

    @model_validator(mode="after")
    def _mean_std(self) -> ResNet18Params:
        if len(self.mean) != len(self.std):
            raise ValueError("'mean' and 'std' need one value per input channel each")
        if any(s <= 0 for s in self.std):
            raise ValueError("'std' values must be positive")
        return self


def _conv_out(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def build_cnn1d(spec: ModelSpec, p: Cnn1dParams) -> nn.Module:
    from .networks import ConvBase

    if len(spec.input_shape) != 2:
        raise UsageError(
            "architecture 'cnn1d' needs 1-D inputs shaped (channels, length); "
            f"this dataset gives {spec.input_shape}"
        )
    length = spec.input_shape[1]
    for kernel in (5, 3, 3):
        length = _conv_out(length, kernel, 2, 1)
    if length < 1:
        raise UsageError(f"architecture 'cnn1d': length {spec.input_shape[1]} is too short")
    return ConvBase(spec.input_shape[0], p.channels, length, spec.num_classes)


def build_resnet18(spec: ModelSpec, p: ResNet18Params) -> nn.Module:
    from .networks import ResNet18

    if len(spec.input_shape) != 3 or spec.input_shape[0] != len(p.mean):
        raise UsageError(
            f"architecture 'resnet18' with {len(p.mean)} normalisation channels needs images "
            f"shaped ({len(p.mean)}, H, W); this dataset gives {spec.input_shape}"
        )
    return ResNet18(spec.input_shape[0], spec.num_classes, p.width, p.stem, p.mean, p.std)
