"""Training throughput of a scenario's model: float32 against the fast path, side by side.

    python benchmarks/train_speed.py cifar10-random10 [--device cuda] [--steps 30] [--width 64]

Builds the scenario's architecture, then times `training.fit` on random inputs of the
scenario's shape with its batch size and augmentation: once in plain float32
(`Accel()`), once with mixed precision and channels_last (`Accel(bfloat16, True)`, what
`Accel.auto` picks on CUDA). Each is repeated `--repeats` times in alternation after a
warm-up; the script prints the median images per second of each and their ratio, and
the projected seconds per epoch of the scenario's training set. No dataset files are
needed. `fit` switches the fast path on by itself only on CUDA; on the CPU, float32
stays the reference (a width-8 ResNet-18 measured 1.9x faster in bfloat16 on this
project's 2-core CPU, a 1-D CNN the same, 0.99x).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mu_bench.api import ModelSpec, Split, build_model
from mu_bench.device import resolve_device, synchronize
from mu_bench.scenario import load
from mu_bench.toolkit.accel import Accel
from mu_bench.toolkit.training import fit

SHAPES = {"cifar10": ((3, 32, 32), 10, 45000), "cifar100": ((3, 32, 32), 100, 45000)}
SHAPES |= {"mnist1d": ((1, 40), 10, 4000), "digits": ((1, 8, 8), 10, 1437)}


def images_per_second(scenario, spec, accel: Accel, device: str, steps: int) -> float:
    torch.manual_seed(0)
    model = build_model(spec).to(device)
    n = steps * scenario.train.batch_size
    x = torch.rand(n, *spec.input_shape, device=device)
    y = torch.randint(0, spec.num_classes, (n,), device=device)
    data = Split(x, y, scenario.train.augment)
    recipe = scenario.train.model_copy(update={"epochs": 1})
    synchronize(device)
    start = time.perf_counter()
    fit(model, data, recipe, generator=torch.Generator().manual_seed(0), accel=accel)
    synchronize(device)
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--width", type=int, default=None, help="override resnet18 width")
    args = ap.parse_args()

    scenario = load(args.scenario)
    device = resolve_device(args.device)
    shape, classes, train_size = SHAPES[scenario.data.dataset]
    params = dict(scenario.model.params)
    if args.width is not None:
        params["width"] = args.width
    spec = ModelSpec(scenario.model.arch, params, shape, classes)
    variants = {
        "float32": Accel(),
        "bf16+channels_last": Accel(torch.bfloat16, len(shape) == 3),
    }
    for accel in variants.values():  # warm-up: kernels, autotuning, lazy imports
        images_per_second(scenario, spec, accel, device, max(2, args.steps // 5))
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, accel in variants.items():
            rates[name].append(images_per_second(scenario, spec, accel, device, args.steps))
    medians = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{scenario.name} {spec.arch} {params} on {device}, batch {scenario.train.batch_size}")
    for name, rate in medians.items():
        print(f"  {name:20s} {rate:10.0f} images/s  {train_size / rate:8.1f} s/epoch")
    print(f"  ratio fast/float32: {medians['bf16+channels_last'] / medians['float32']:.2f}x")


if __name__ == "__main__":
    main()
