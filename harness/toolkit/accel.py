"""Speed-ups that apply where training runs: mixed precision and channels_last on CUDA.

`Accel.auto(device, model)` is what `training.fit` uses when none is given: on a CUDA
device, autocast to bfloat16 (float16 with a gradient scaler on GPUs without bfloat16)
and, for models with 2-D convolutions, the channels_last memory layout, which tensor
cores prefer; cuDNN's autotuner is switched on. On the CPU it is plain float32, the
reference path. Weights stay float32 in every case (autocast only lowers the precision
of the matmuls and convolutions inside the forward pass), and inference for the metrics
(`training.predict_logits`) stays float32 so that per-example losses are exact.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Accel:
    amp_dtype: torch.dtype | None = None  # autocast dtype, or None for float32
    channels_last: bool = False

    @classmethod
    def auto(cls, device: torch.device | str, model: nn.Module) -> Accel:
        device = torch.device(device)
        if device.type != "cuda":
            return cls()
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick kernels
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        has_conv2d = any(isinstance(m, nn.Conv2d) for m in model.modules())
        return cls(dtype, has_conv2d)

    def prepare(self, model: nn.Module) -> nn.Module:
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self, device: torch.device):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.amp_dtype)

    def scaler(self, device: torch.device) -> torch.amp.GradScaler | None:
        """A loss scaler for float16, whose small gradients would otherwise underflow."""
        return torch.amp.GradScaler(device.type) if self.amp_dtype == torch.float16 else None
