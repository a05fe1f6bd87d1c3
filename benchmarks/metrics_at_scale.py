"""What the metrics beyond the forward pass cost at CIFAR-10's sizes, on this CPU.

No GPU and no CIFAR files needed: seeded synthetic per-example statistics with
CIFAR-10 random-10%'s sizes (|D_f| = 4,500, |D_t| = 10,000, SalUn's 10,000 shadow
members) beside digits-random10's (130, 360, 360), measured side by side in one run,
medians of REPEATS:
- `mia_efficacy` (SalUn's RBF SVC; quadratic in |D_t|), per model;
- `mia_loss_acc` (the starting kit's 10-split logistic regression), per model;
- `forget_quality` for N models per side, per submission.
Prints seconds at each size and the ratio.

    .venv/bin/python benchmarks/metrics_at_scale.py [--models 8] [--repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import median_seconds

SIZES = {"digits": (130, 360), "cifar10": (4500, 10000)}  # (|D_f|, |D_t|)


def main() -> None:
    from mu_bench.evaluation.metrics.forget_quality import forget_quality
    from mu_bench.evaluation.metrics.mia import mia_efficacy, mia_loss_acc

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    seconds: dict[str, dict[str, float]] = {}
    for name, (n_forget, n_test) in SIZES.items():
        # True-label probabilities and losses of a well-trained model; confidences of N
        # gold and N slightly shifted "unlearned" models, one Gaussian per example.
        probs = {
            k: rng.beta(a, 1.0, n)
            for k, a, n in (("shadow", 8, n_test), ("test", 6, n_test), ("forget", 7, n_forget))
        }
        losses = {
            k: rng.exponential(s, n)
            for k, s, n in (("forget", 0.05, n_forget), ("test", 0.2, n_test))
        }
        centre = rng.normal(6, 2, n_forget)
        gold = centre + rng.normal(0, 1, (args.models, n_forget))
        unlearned = centre + 0.3 + rng.normal(0, 1, (args.models, n_forget))
        runs = {
            "mia_efficacy, per model": lambda p=probs: mia_efficacy(
                p["shadow"], p["test"], p["forget"]
            ),
            "mia_loss_acc, per model": lambda s=losses: mia_loss_acc(s["forget"], s["test"]),
            f"forget_quality, N = {args.models}": lambda u=unlearned, g=gold: forget_quality(u, g),
        }
        seconds[name] = {k: median_seconds(fn, args.repeats)[0] for k, fn in runs.items()}
    print(f"metric cost beyond the forward pass, synthetic inputs, medians of {args.repeats}")
    print(f"  {'':28} {'digits':>9} {'cifar10':>9} {'ratio':>7}")
    for what in seconds["digits"]:
        small, large = seconds["digits"][what], seconds["cifar10"][what]
        print(f"  {what:28} {small:8.3f}s {large:8.2f}s {large / small:6.0f}x")


if __name__ == "__main__":
    main()
