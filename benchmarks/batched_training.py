"""Per-model training time of K models trained at once (`batched_training.train_batched`)
against one by one (`training.fit`, as prepare trains them today), side by side.

    .venv/bin/python benchmarks/batched_training.py [--ks 8 32 64] [--epochs 5]
        [--repeats 3] [--threads N] [--cnn1d] [--prepare 32 64]

For each K, each repeat runs, in this order: the stacked path on K models, the exact
path on K models, and 4 models one by one with `fit`; per-model times are the batch's
wall time / K and the median single model's. Prints the medians and the ratios
(one-by-one / batched). Per-model time is linear in epochs, so `--epochs` (default 5 of
the recipe's 30) only shortens the run; the full-recipe seconds are projected x 30/5.
Models are the scenario's: digits-random10's MLP on its retain set, and with `--cnn1d`
mnist1d-random10's ConvBase on its retain set (K = 8 and 32).

`--prepare N ...` then times `mu-bench prepare digits-random10` end to end as it is today
(`submission.prepare.prepare` on a fresh cache: 1 original + 8 gold + 8 holdout + 8 IN models,
one by one) and a batched prepare with N models per side: the original alone with `fit`,
then the gold, holdout and IN models (their real seeds, `init_seed`) with
`train_batched`, each model's logits over the training and test sets, and both files
saved as prepare saves them.

Measured here (2-core CPU shared with other jobs whose load came and went: absolute
times moved by 2x between runs; each ratio is from one run, side by side):
- digits MLP, 2 threads, per model: one by one 0.80-1.10 s, stacked 0.31-0.38 s (2.13x
  at K = 8, 2.75x at 32, 3.25x at 64), exact 0.90 s (0.89-1.20x); 1 thread: stacked
  1.60-2.67x, exact 1.09-1.24x.
- cnn1d (mnist1d-random10), 2 threads: stacked 1.98x (K = 8), 2.33x (K = 32); exact
  1.38-1.62x.
- prepare digits-random10, 2 threads: today 34 s (1 + 3 x 8 models), batched with 32 per
  side 34 s (1.01x); 1 thread: today 58 s, 32 per side 91 s (1.57x), 64 per side 150 s
  (2.59x).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mu_bench.cache import Cache
from mu_bench.data.forget import make_split
from mu_bench.data.registry import build_dataset
from mu_bench.data.split import Split
from mu_bench.models.registry import build_model, spec_for
from mu_bench.scenario import load
from mu_bench.submission.prepare import init_seed, prepare
from mu_bench.toolkit.batched_training import train_batched
from mu_bench.toolkit.training import fit, predict_logits, warm_up


def scenario_data(name: str):
    scenario = load(name)
    data = build_dataset(scenario.data, scenario.seed)
    split = make_split(scenario.forget, scenario.seed, data)
    spec = spec_for(scenario.model, data.input_shape, data.num_classes)
    full = Split(data.x_train, data.y_train, scenario.train.augment)
    retain = Split(
        data.x_train[split.retain_idx], data.y_train[split.retain_idx], scenario.train.augment
    )
    return scenario, data, spec, full, retain


def one_by_one(spec, data, recipe, seed: int, epochs: int) -> float:
    torch.manual_seed(seed)
    model = build_model(spec)
    start = time.perf_counter()
    fit(model, data, recipe, generator=torch.Generator().manual_seed(seed), epochs=epochs)
    return time.perf_counter() - start


def compare(name: str, ks: list[int], epochs: int, repeats: int) -> None:
    scenario, _, spec, _, retain = scenario_data(name)
    recipe = scenario.train
    scale = recipe.epochs / epochs
    warm_up()
    train_batched(spec, retain, recipe, [0, 1], epochs=1)  # kernels, lazy imports
    print(
        f"\n{name}: {spec.arch} {spec.params}, {len(retain)} retain examples, "
        f"{epochs} of {recipe.epochs} epochs, {torch.get_num_threads()} threads"
    )
    print(
        f"{'K':>4} {'one by one':>12} {'stacked':>12} {'exact':>12}   "
        f"{'stacked x':>9} {'exact x':>8}   (ms per model, full recipe)"
    )
    for k in ks:
        seeds = list(range(1000, 1000 + k))
        times: dict[str, list[float]] = {"stacked": [], "exact": [], "single": []}
        for _ in range(repeats):
            for path, exact in (("stacked", False), ("exact", True)):
                run = train_batched(spec, retain, recipe, seeds, exact=exact, epochs=epochs)
                assert run.path == path, run.note
                times[path].append(run.seconds / k)
            times["single"] += [one_by_one(spec, retain, recipe, s, epochs) for s in seeds[:4]]
        med = {p: statistics.median(v) * scale * 1000 for p, v in times.items()}
        print(
            f"{k:>4} {med['single']:>12.0f} {med['stacked']:>12.0f} {med['exact']:>12.0f}   "
            f"{med['single'] / med['stacked']:>8.2f}x {med['single'] / med['exact']:>7.2f}x"
        )


def save_model(model, data, folder: Path) -> None:
    folder.mkdir(parents=True)
    torch.save(model.state_dict(), folder / "weights.pt")
    outputs = {
        "train": predict_logits(model, data.x_train),
        "test": predict_logits(model, data.x_test),
    }
    torch.save(outputs, folder / "outputs.pt")


def batched_prepare(n: int, out: Path) -> float:
    """Digits-random10's original, and N gold, N holdout and N IN models, batched."""
    start = time.perf_counter()
    scenario, data, spec, full, retain = scenario_data("digits-random10")
    torch.manual_seed(init_seed(scenario, "original", 0))
    original = build_model(spec)
    fit(
        original,
        full,
        scenario.train,
        generator=torch.Generator().manual_seed(init_seed(scenario, "original", 0)),
    )
    save_model(original.eval(), data, out / "original")
    roles = [
        ("gold", retain, range(n)),
        ("gold-holdout", retain, range(n)),
        ("original", full, range(1, n + 1)),
    ]
    for role, train_set, indices in roles:
        seeds = [init_seed(scenario, role, i) for i in indices]
        run = train_batched(spec, train_set, scenario.train, seeds)
        for i, model in zip(indices, run.models, strict=True):
            save_model(model, data, out / f"{role}-{i}")
    return time.perf_counter() - start


def prepare_today(out: Path) -> float:
    start = time.perf_counter()
    prepare(load("digits-random10"), "cpu", cache=Cache(out))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ks", type=int, nargs="+", default=[8, 32, 64])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--cnn1d", action="store_true")
    ap.add_argument("--prepare", type=int, nargs="*", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    compare("digits-random10", args.ks, args.epochs, args.repeats)
    if args.cnn1d:
        compare("mnist1d-random10", [k for k in args.ks if k <= 32], args.epochs, args.repeats)
    if args.prepare:
        with tempfile.TemporaryDirectory() as tmp:
            today = prepare_today(Path(tmp) / "today")
            print(f"\nprepare digits-random10 today (1 + 3 x 8 models, one by one): {today:.0f} s")
            for n in args.prepare:
                seconds = batched_prepare(n, Path(tmp) / f"batched-{n}")
                print(
                    f"batched prepare, 1 + 3 x {n} models: {seconds:.0f} s "
                    f"({seconds / today:.2f} x today's time, {n / 8:.0f} x the models)"
                )


if __name__ == "__main__":
    main()
