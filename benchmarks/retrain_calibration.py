"""Is `retrain` at its ceiling? Retrain's normalised forget quality over several runs,
as a submission scores it (the scenario's prepared reference, pooled ceiling, F against
every disjoint gold set of the pool).

    .venv/bin/python benchmarks/retrain_calibration.py [--scenarios digits-random10
        digits-class3] [--runs 5] [--seeds 8] [--methods retrain noop]

Per scenario, prepares it (cached), runs each method once with runs x seeds seeds and
cuts its models into `--runs` consecutive groups of `--seeds` (seeds 0-7, 8-15, ...: what
`--runs` separate submissions with those seeds would score), and prints each group's F,
F / pooled ceiling and the ceiling's mean and spread, then the share of groups whose
normalised F lies within 0.9-1.1, and the relearning attack's forget accuracies.

Measured here (defaults: 32 gold + 32 holdout models, 5 runs of 8 seeds; one run of the
script on 2 cores under load average 20):
  digits-random10  ceiling at N = 8: 0.183, one draw's sd 0.007
    retrain norm 1.004, 1.024, 1.027, 0.995, 1.002 (5/5 in 0.9-1.1); noop 0 (5 runs)
    relearned forget acc: retrain 0.971, noop 1.000, gold 0.972
  digits-class3    ceiling at N = 8: 0.190, one draw's sd 0.022
    retrain norm 1.016, 0.981, 1.017, 0.984, 1.004 (5/5 in 0.9-1.1); noop 0 (5 runs)
    relearned forget acc: retrain 0.000, noop 0.991 (retain only 0.940), gold 0.000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mu_bench.evaluation.scoring import forget_confidences
from mu_bench.scenario import load
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan
from mu_bench.submission.prepare import prepare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", nargs="+", default=["digits-random10", "digits-class3"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--methods", nargs="+", default=["retrain", "noop"])
    args = ap.parse_args()
    for name in args.scenarios:
        clock = time.perf_counter()
        art = prepare(load(name), "cpu")
        ref, n = art.reference, args.seeds
        ceiling, spread = ref.ceiling(n), ref.ceiling_spread(n)
        print(
            f"\n{name}: {len(art.gold)} gold + {len(art.gold_holdout)} holdout + "
            f"{len(art.in_models)} IN models (prepare {time.perf_counter() - clock:.0f} s); "
            f"ceiling at N = {n}: {ceiling:.3f} sd {spread:.3f} (one draw)"
        )
        for method in args.methods:
            evaluation = run(plan(method, name, seeds=args.runs * n), "cpu")
            outs = [evaluation.outputs[s] for s in sorted(evaluation.outputs)]
            confs = forget_confidences(outs, art.data, art.split)
            norms = []
            for r in range(args.runs):
                got = ref.method_f(confs[r * n : (r + 1) * n])
                norms.append(got.mean / ceiling)
                print(
                    f"  {method:8} run {r}: F {got.mean:.3f} sd {got.std:.3f}  norm {norms[-1]:.3f}"
                )
            inside = sum(0.9 <= v <= 1.1 for v in norms)
            m = evaluation.report.metrics
            print(
                f"  {method:8} norm median {np.median(norms):.3f} range {min(norms):.3f}-"
                f"{max(norms):.3f}; inside 0.9-1.1: {inside}/{args.runs}; relearn forget acc "
                f"{m.get('relearn_forget_acc', float('nan')):.3f} (D_r only "
                f"{m.get('relearn_retain_only_acc', float('nan')):.3f}), gold "
                f"{evaluation.report.reference['gold'].get('relearn_forget_acc', float('nan')):.3f}"
            )


if __name__ == "__main__":
    main()
