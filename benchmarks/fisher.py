"""The true diagonal Fisher, side by side: `mu_bench.fisher.diagonal_fisher` (torch.func:
vmap over examples of jacrev over classes) in its default chunks, the same in 4x larger
chunks, and a Python loop of one `autograd.grad` per (example, class). Prints the median
seconds of each over REPEATS interleaved runs, the ratios to the default, and the largest
difference from the loop's result.

    .venv/bin/python benchmarks/fisher.py [--examples 145] [--repeats 5] [--arch mlp]
        [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mu_bench.api import ModelSpec, build_model
from mu_bench.toolkit.fisher import diagonal_fisher

SHAPES = {
    "mlp": ((1, 8, 8), {"hidden": [256, 256]}),
    "cnn1d": ((1, 40), {}),
    "resnet18": ((3, 32, 32), {"width": 16}),
}


def loop_fisher(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    names, params = zip(*model.named_parameters(), strict=True)
    fisher = [torch.zeros_like(p) for p in params]
    for xi in x:
        log_p = model(xi[None]).log_softmax(-1)[0]
        for y in range(len(log_p)):
            grads = torch.autograd.grad(log_p[y], params, retain_graph=True)
            for f, g in zip(fisher, grads, strict=True):
                f += log_p[y].exp().detach() * g.square()
    return {n: f / len(x) for n, f in zip(names, fisher, strict=True)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="mlp", choices=sorted(SHAPES))
    ap.add_argument("--examples", type=int, default=145)  # one digit of digits-class3
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    shape, params = SHAPES[args.arch]
    torch.manual_seed(0)
    model = build_model(ModelSpec(args.arch, params, shape, 10)).to(args.device)
    x = torch.rand(args.examples, *shape, device=args.device)
    fast, slow = diagonal_fisher(model, x), loop_fisher(model, x)  # warm-up, and the check
    diff = max((fast[k] - slow[k]).abs().max().item() for k in fast)

    def larger_chunks(model, x):
        return diagonal_fisher(model, x, memory_bytes=2**26 if not x.is_cuda else 2**33)

    runs = {"torch.func": diagonal_fisher, "4x chunks": larger_chunks, "loop": loop_fisher}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn(model, x)
            if x.is_cuda:
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{args.arch}, {args.examples} examples, {args.device}, threads {torch.get_num_threads()}"
    )
    for k, v in med.items():
        print(f"  {k:10s} {v:.3f} s (median of {args.repeats})")
    base = med["torch.func"]
    print(
        f"  loop / torch.func = {med['loop'] / base:.2f}x; 4x chunks / torch.func = "
        f"{med['4x chunks'] / base:.2f}x; max |difference| {diff:.2e}"
    )


if __name__ == "__main__":
    main()
