"""What evaluation costs beyond the one forward pass, per model, on a digits scenario.

For N stand-in "unlearned" models (the scenario's holdout gold models, so every metric
has real outputs to work on), measured side by side in one run, medians of REPEATS:
- the forward pass: `evaluation.infer` (training and test sets, one batched pass);
- per-model metrics: `evaluation.model_metrics` (accuracies, loss MIA, MIA-efficacy);
- submission-level metrics: `evaluation.submission_metrics` (forget quality and score
  for N against N gold models, the ceiling from the cache, LiRA), divided by N.
Prints each part in milliseconds per model and its ratio to the pass. The scenario must
train a holdout set (`[gold] ceiling = true`, as the digits scenarios do).

    .venv/bin/python benchmarks/eval_overhead.py [--scenario digits-random10] [--models 16]
"""

from __future__ import annotations

import argparse

from timing import median_seconds


def main() -> None:
    import torch

    from mu_bench.evaluation.inference import infer, load_weights
    from mu_bench.evaluation.scoring import (
        forget_confidences,
        model_metrics,
        submission_metrics,
    )
    from mu_bench.scenario import load
    from mu_bench.submission.prepare import mia_seed, prepare

    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="digits-random10")
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    art = prepare(load(args.scenario), "cpu")
    n = min(args.models, len(art.gold_holdout))
    if n < 2:
        raise SystemExit(f"{args.scenario} trains no holdout gold set: set [gold] ceiling = true")
    models = [load_weights(m.weights, art.spec, "cpu")[0] for m in art.gold_holdout[:n]]
    outputs = [infer(m, art.data) for m in models]
    seed = mia_seed(art.scenario)
    per_seed = [model_metrics(o, art.data, art.split, seed) for o in outputs]
    art.reference.ceiling(n)  # the reference is prepared, as a warm submit finds it

    def per_model(fn) -> float:
        return median_seconds(fn, args.repeats)[0] / n

    t_pass = per_model(lambda: [infer(m, art.data) for m in models])
    t_model = per_model(lambda: [model_metrics(o, art.data, art.split, seed) for o in outputs])
    t_subm = per_model(
        lambda: submission_metrics(
            forget_confidences(outputs, art.data, art.split), per_seed, art.reference
        )
    )
    print(
        f"{args.scenario}: {n} models, {len(art.data.y_train) + len(art.data.y_test)} examples "
        f"per pass, |D_f| = {len(art.split.forget_idx)}, medians of {args.repeats} (ms per model)"
    )
    print(f"  forward pass (infer)           {1e3 * t_pass:8.2f}   1.0x")
    for name, t in (("per-model metrics", t_model), ("submission-level / N", t_subm)):
        print(f"  {name:30} {1e3 * t:8.2f}   {t / t_pass:.1f}x the pass")
    total = t_model + t_subm
    print(f"  metrics beyond the pass        {1e3 * total:8.2f}   {total / t_pass:.1f}x the pass")


if __name__ == "__main__":
    main()
