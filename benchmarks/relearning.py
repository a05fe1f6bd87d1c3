"""The relearning attack (`evaluation.relearning.relearn`) on real unlearned models: how
much forget accuracy comes back, per method, against the gold models under the same
steps, and what it costs per model.

    .venv/bin/python benchmarks/relearning.py [--scenarios digits-class3 digits-random10]
        [--methods noop retrain finetune gradient-ascent scrub salun] [--seeds 3]
        [--steps 10 25]

Runs each method through the real pipeline (`submission.pipeline.run`, keeping its work
folder), then relearns every seed's returned weights and the first `--seeds` gold models
with the same seed, for each `--steps` value. Prints, per method, the mean forget
accuracy on the evaluated 80% of the forget set before relearning, after relearning on
the retain set only, and after relearning on the retain set plus 10% of the forget set,
and the median seconds per model (both attacks).

Measured here (3 seeds; forget accuracy before -> retain only / with slice, 10 steps):
digits-class3: gold 0 -> 0 / 0; noop 1.0 -> 0.92 / 0.97; retrain, scrub, salun 0 -> 0 / 0;
gradient-ascent 0 -> 0.01 / 0.66 (25 steps: 0 / 0.97), its forgetting dormant; finetune
0.90 -> 0.85 / 0.97. digits-random10: every model, gold included, stays at 0.98-1.0
(digits generalise: a retrained model classifies its forgotten images anyway), so the
attack tells nothing there. Seconds per model were not measurable on the shared machine
(0.1 to 20 s as the load came and went); side by side with `fit`, both attacks cost 4%
of training the model once at 10 steps, 10% at 25.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mu_bench.evaluation.relearning import RelearnConfig, relearn
from mu_bench.isolation.protocol import OUTPUT, WEIGHTS
from mu_bench.scenario import load
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan
from mu_bench.submission.prepare import prepare


def attack(art, weights: Path, seed: int, config: RelearnConfig):
    state = torch.load(weights, weights_only=True, map_location="cpu")
    start = time.perf_counter()
    result = relearn(
        state, art.spec, art.retain, art.forget, art.scenario.train, seed=seed, config=config
    )
    return result, time.perf_counter() - start


def row(label: str, results: list, seconds: list[float]) -> str:
    mean = {
        k: np.mean([getattr(r, k) for r in results])
        for k in ("before", "retain_only", "with_slice")
    }
    return (
        f"  {label:24s} {mean['before']:7.3f} {mean['retain_only']:12.3f} "
        f"{mean['with_slice']:11.3f} {statistics.median(seconds):9.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", nargs="+", default=["digits-class3", "digits-random10"])
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["noop", "retrain", "finetune", "gradient-ascent", "scrub", "salun"],
    )
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, nargs="+", default=[RelearnConfig.steps])
    args = ap.parse_args()
    configs = {steps: RelearnConfig(steps=steps) for steps in args.steps}
    work = Path(tempfile.mkdtemp(prefix="relearn-bench-"))
    os.environ["MU_BENCH_WORK"] = str(work)
    for name in args.scenarios:
        art = prepare(load(name), "cpu")
        print(f"\n{name}: forget accuracy on the evaluated forget examples")
        print(
            f"  {'model':24s} {'before':>7s} {'retain only':>12s} {'with slice':>11s} "
            f"{'s/model':>9s}"
        )
        for steps, config in configs.items():
            results, seconds = [], []
            for seed, gold in enumerate(art.gold[: args.seeds]):
                r, s = attack(art, gold.weights, seed, config)
                results.append(r)
                seconds.append(s)
            print(row(f"gold, {steps} steps", results, seconds))
        for method in args.methods:
            before = set(work.iterdir())
            report = run(plan(method, name, seeds=args.seeds), "cpu", keep_work=True).report
            (folder,) = set(work.iterdir()) - before
            for steps, config in configs.items():
                results, seconds = [], []
                for seed in range(args.seeds):
                    weights = folder / f"seed-{seed}" / OUTPUT / WEIGHTS
                    if weights.exists():
                        r, s = attack(art, weights, seed, config)
                        results.append(r)
                        seconds.append(s)
                label = f"{method}, {steps} steps"
                if results:
                    print(row(label, results, seconds))
                else:
                    print(f"  {label:24s} no model ({report.status})")


if __name__ == "__main__":
    main()
