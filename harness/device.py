"""Device selection: CUDA when present, else the CPU; every path works on both."""

from __future__ import annotations

from .errors import UsageError


def resolve_device(name: str = "auto") -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available here (valid: auto, cpu)")
    if name != "cpu" and not name.startswith("cuda"):
        raise UsageError(f"--device {name}: unknown device (valid: auto, cpu, cuda, cuda:N)")
    return name


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
