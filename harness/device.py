"""Device selection: CUDA when present, else the CPU; every path works on both."""

from __future__ import annotations

import os

from .errors import UsageError

# Device nodes of a GPU torch may use: NVIDIA's, ROCm's (torch.cuda covers both), WSL's.
GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def check_name(name: str) -> None:
    """UsageError unless `name` is a device name mu-bench knows (no torch needed)."""
    if name not in ("auto", "cpu") and not name.startswith("cuda"):
        raise UsageError(f"--device {name}: unknown device (valid: auto, cpu, cuda, cuda:N)")


def likely_device(name: str = "auto") -> str:
    """What `resolve_device(name)` will most likely say, in microseconds and without
    importing torch (seconds): for "auto", "cuda" when a GPU's device node exists and
    CUDA_VISIBLE_DEVICES does not hide every GPU. A guess, for starting helpers early
    (the fork server serves CPU runs only); a wrong guess costs time, never a result."""
    if name != "auto":
        return name
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return "cpu"
    return "cuda" if any(os.path.exists(node) for node in GPU_NODES) else "cpu"


def resolve_device(name: str = "auto") -> str:
    import torch

    check_name(name)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available here (valid: auto, cpu)")
    return name


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
