"""The torch modules behind every architecture, and a builder for each (see `params.py`
for their parameters and sources).

Imported only when a model is built, so that loading a scenario never imports torch;
torchvision (about 2 s to import) only when a ResNet is built.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .params import CIFAR10_MEAN, CIFAR10_STD, Cnn1dParams, MLPParams, ResNet18Params
from .spec import ModelSpec


def build_mlp(spec: ModelSpec, p: MLPParams) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(spec.input_shape)
    for h in p.hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if p.dropout:
            layers.append(nn.Dropout(p.dropout))
        width = h
    layers.append(nn.Linear(width, spec.num_classes))
    return nn.Sequential(*layers)


def _conv_out(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def build_cnn1d(spec: ModelSpec, p: Cnn1dParams) -> nn.Module:
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
    if len(spec.input_shape) != 3 or spec.input_shape[0] != len(p.mean):
        raise UsageError(
            f"architecture 'resnet18' with {len(p.mean)} normalisation channels needs images "
            f"shaped ({len(p.mean)}, H, W); this dataset gives {spec.input_shape}"
        )
    return ResNet18(spec.input_shape[0], spec.num_classes, p.width, p.stem, p.mean, p.std)


class ConvBase(nn.Module):
    """MNIST-1D's ConvBase: three strided 1-D convolutions and a linear classifier."""

    def __init__(self, channels_in: int, channels: int, flat_length: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels_in, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.linear = nn.Linear(channels * flat_length, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x).relu()
        h = self.conv2(h).relu()
        h = self.conv3(h).relu()
        return self.linear(h.flatten(1))


class NormalizeByChannelMeanStd(nn.Module):
    """(x - mean) / std per channel, as SalUn's first layer (buffers `mean`, `std`)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]


class ResNet18(nn.Module):
    """ResNet-18 with torchvision's parameter names, a normalising first layer, and a
    CIFAR (3x3/1, no max-pool) or ImageNet (7x7/2 + max-pool) stem."""

    def __init__(
        self,
        channels_in: int,
        num_classes: int,
        width: int = 64,
        stem: str = "cifar",
        mean: tuple[float, ...] = CIFAR10_MEAN,
        std: tuple[float, ...] = CIFAR10_STD,
    ):
        super().__init__()
        self.normalize = NormalizeByChannelMeanStd(mean, std)
        if stem == "cifar":
            self.conv1 = nn.Conv2d(channels_in, width, 3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(channels_in, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        planes = [width, 2 * width, 4 * width, 8 * width]
        self.layer1 = self._stage(width, planes[0], 1)
        self.layer2 = self._stage(planes[0], planes[1], 2)
        self.layer3 = self._stage(planes[1], planes[2], 2)
        self.layer4 = self._stage(planes[2], planes[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
        from torchvision.models.resnet import BasicBlock, conv1x1

        down = None
        if stride != 1 or inplanes != planes:
            down = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
        return nn.Sequential(BasicBlock(inplanes, planes, stride, down), BasicBlock(planes, planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.normalize(x)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Ensemble(nn.Module):
    """Members in an `nn.ModuleList` (`members.0. ...`) and their aggregation."""

    def __init__(self, members: list[nn.Module], num_classes: int, aggregation: str):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.num_classes = num_classes
        self.aggregation = aggregation
        self.register_buffer("member_weights", torch.ones(len(members)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(x, self.aggregation)

    def combine(self, x: torch.Tensor, aggregation: str) -> torch.Tensor:
        """The members' outputs aggregated by `aggregation` ("vote" or "softmax-mean"),
        whatever the ensemble's own rule (evaluation reads a vote's probabilities)."""
        active = [i for i, w in enumerate(self.member_weights.tolist()) if w > 0]
        if not active:
            return x.new_zeros((x.shape[0], self.num_classes), dtype=torch.float32)
        logits = torch.stack([self.members[i](x).float() for i in active])  # (S, n, C)
        w = self.member_weights[active].float()
        if aggregation == "vote":
            votes = F.one_hot(logits.argmax(-1), self.num_classes).float()
            return torch.einsum("s,snc->nc", w, votes)
        log_p = logits.log_softmax(-1) + w.log()[:, None, None]
        return torch.logsumexp(log_p, 0) - math.log(float(w.sum()))
