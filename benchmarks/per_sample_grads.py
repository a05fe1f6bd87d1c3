"""Per-sample gradients for influence unlearning: the original's batch-size-1 loop vs
`torch.func` chunks (`methods/_grads.py`).

Times both on N samples of random inputs with the digits MLP and MNIST-1D's ConvBase,
the `torch.func` side in the chunks the method uses (`chunk_size`), interleaved REPEATS
times, checks they agree, and prints the medians and their ratio. The Fisher diagonal
(PBU, Fisher forgetting) has its own: `benchmarks/fisher.py`.

    .venv/bin/python benchmarks/per_sample_grads.py [--samples 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mu_bench.api import ModelSpec, build_model, chunk_size, flat_grad, per_sample_grads

MODELS = {
    "digits mlp": ModelSpec("mlp", {"hidden": [256, 256]}, (1, 8, 8), 10),
    "mnist1d cnn1d": ModelSpec("cnn1d", {}, (1, 40), 10),
}


def loop_sample_grads(model, x, y) -> torch.Tensor:
    rows = []
    for i in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        rows.append(flat_grad(model.parameters()))
    return torch.stack(rows)


def chunked_sample_grads(model, x, y) -> torch.Tensor:
    size = chunk_size(model)
    return torch.cat(
        [per_sample_grads(model, x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]
    )


def timed(fn, *args) -> tuple[float, torch.Tensor]:
    clock = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - clock, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    for label, spec in MODELS.items():
        model = build_model(spec).eval()
        x = torch.rand(args.samples, *spec.input_shape)
        y = torch.randint(0, spec.num_classes, (args.samples,))
        loops, funcs = [], []
        for _ in range(args.repeats):  # interleaved: load drifts hit both
            t_loop, ref = timed(loop_sample_grads, model, x, y)
            t_func, got = timed(chunked_sample_grads, model, x, y)
            loops.append(t_loop)
            funcs.append(t_func)
            assert torch.allclose(ref, got, rtol=1e-4, atol=1e-7), label
        loop, func = statistics.median(loops), statistics.median(funcs)
        print(
            f"{label}, per-sample grads, {args.samples} samples, chunks of {chunk_size(model)}, "
            f"median of {args.repeats}: loop {loop:.2f} s vs torch.func {func:.2f} s "
            f"(ratio {loop / func:.1f}x)"
        )


if __name__ == "__main__":
    main()
