"""Per-sample gradients: the originals' batch-size-1 loops vs `torch.func` chunks
(`methods/_grads.py`), for influence unlearning (one CE gradient per sample) and Fisher
forgetting (one CE gradient per sample and class, weighted by p(class)).

Times both on N samples of random inputs with the digits MLP and MNIST-1D's ConvBase,
the `torch.func` side in the chunks the methods use (`chunk_size`), interleaved REPEATS
times, checks they agree, and prints the medians and ratios; then the Fisher diagonal in
chunks of `chunk_size` against chunks of N (why the CPU cap on a chunk is small).

    .venv/bin/python benchmarks/per_sample_grads.py [--samples 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mu_bench.methods._grads import chunk_size, fisher_diag_sum, flat_grad, per_sample_grads
from mu_bench.models import ModelSpec, build_model

MODELS = {
    "digits mlp": ModelSpec("mlp", {"hidden": [256, 256]}, (1, 8, 8), 10),
    "mnist1d cnn1d": ModelSpec("cnn1d", {}, (1, 40), 10),
}


def loop_sample_grads(model, x, y) -> torch.Tensor:
    rows = []
    for i in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        rows.append(flat_grad(model))
    return torch.stack(rows)


def loop_fisher(model, x) -> torch.Tensor:
    total = 0
    for i in range(len(x)):
        out = model(x[i : i + 1])
        prob = torch.softmax(out, dim=-1).detach()
        for c in range(out.shape[1]):
            model.zero_grad()
            F.cross_entropy(out, torch.tensor([c])).backward(retain_graph=True)
            total = total + prob[0, c] * flat_grad(model).pow(2)
    return total


def chunked(fn, size: int):
    """`fn` over chunks of `size` samples, the results concatenated or summed."""

    def run(model, x, *rest):
        parts = [
            fn(model, x[i : i + size], *(r[i : i + size] for r in rest))
            for i in range(0, len(x), size)
        ]
        return torch.cat(parts) if parts[0].ndim == 2 else sum(parts)

    return run


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
        size = chunk_size(model)
        pairs = {
            "per-sample grads": (loop_sample_grads, chunked(per_sample_grads, size), (model, x, y)),
            "fisher diagonal": (loop_fisher, chunked(fisher_diag_sum, size), (model, x)),
            f"fisher diagonal, chunks of {len(x)} vs {size}": (
                chunked(fisher_diag_sum, len(x)),
                chunked(fisher_diag_sum, size),
                (model, x),
            ),
        }
        for what, (slow, fast, inputs) in pairs.items():
            loops, funcs = [], []
            for _ in range(args.repeats):  # interleaved: load drifts hit both
                t_loop, ref = timed(slow, *inputs)
                t_func, got = timed(fast, *inputs)
                loops.append(t_loop)
                funcs.append(t_func)
                assert torch.allclose(ref, got, rtol=1e-4, atol=1e-7), what
            loop, func = statistics.median(loops), statistics.median(funcs)
            print(
                f"{label}, {what}, {args.samples} samples, median of {args.repeats}: "
                f"{loop:.2f} s vs {func:.2f} s (ratio {loop / func:.1f}x)"
            )


if __name__ == "__main__":
    main()
