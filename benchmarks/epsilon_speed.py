"""Forget quality's epsilons: mu-bench's sorted-count path against the brute force, and
its examples computed in batches against one example at a time.

The brute force is tests/reference_metrics.py's literal transcription of the NeurIPS
2023 challenge's metric.py: every decision rule (about 160,000 per example) compared
with every sample, as the reference does on a GPU, here with NumPy on the CPU. Both run
on the same inputs, side by side in one run: the logit-scaled confidences of the digits
forget set under N holdout gold models (the "unlearned" side) and N gold models. The
first run trains the 2N models the scenario lacks (digits: about a second each, then
cached). Prints medians, the ratio, and checks that both give the same epsilons and F.
`--one-at-a-time` also times `example_epsilon` called once per example (what
`forget_quality` did before its examples were batched) against the batched `epsilons`,
at N = `--models` and at N = 8, and checks that they agree bit for bit. `--threads`
also times a method's F against 8 disjoint gold sets at N = 8 (`pooled_forget_quality`,
what a submission computes last) with one thread and with `ceiling.MAX_THREADS`, at
torch's default thread count, as the harness runs it.

    .venv/bin/python benchmarks/epsilon_speed.py [--models 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from timing import median_seconds

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.reference_metrics


def main() -> None:
    import torch

    from mu_bench.evaluation.metrics.forget_quality import (
        epsilons,
        example_epsilon,
        forget_quality,
    )
    from mu_bench.evaluation.scoring import forget_confidences
    from mu_bench.scenario import load
    from mu_bench.submission.prepare import prepare
    from tests.reference_metrics import challenge_forget_score

    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="digits-random10")
    ap.add_argument("--models", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--one-at-a-time", action="store_true")
    ap.add_argument("--threads", action="store_true")
    args = ap.parse_args()
    harness_threads = torch.get_num_threads()  # what `mu-bench submit` runs with
    torch.set_num_threads(1)
    n = args.models
    art = prepare(load(args.scenario), "cpu", gold_seeds=n, ceiling=True, in_models=0)
    unlearned = forget_confidences((m.outputs for m in art.gold_holdout), art.data, art.split)
    gold = forget_confidences((m.outputs for m in art.gold), art.data, art.split)

    fast_s, fast = median_seconds(lambda: forget_quality(unlearned, gold), args.repeats)
    brute_s, (brute_f, brute_eps) = median_seconds(
        lambda: challenge_forget_score(unlearned, gold), args.repeats
    )
    same_f = fast.value == brute_f
    gap = float(np.max(np.abs(fast.epsilons - brute_eps)))
    print(
        f"{args.scenario}: N = {n} models per side, |D_f| = {unlearned.shape[1]} examples, "
        f"medians of {args.repeats}"
    )
    print(f"  sorted counts (mu-bench)   {fast_s:8.2f} s   F = {fast.value:.4f}")
    print(f"  brute force (reference)    {brute_s:8.2f} s   F = {brute_f:.4f}")
    print(f"  ratio                      {brute_s / fast_s:8.1f}x")
    print(f"  same F: {same_f}; largest epsilon difference {gap:.1e} (float32 rates)")
    if not same_f or gap > 1e-6:
        raise SystemExit("the two paths disagree")
    if args.one_at_a_time:
        for k in sorted({n, 8}):
            u, g = unlearned[:k], gold[:k]
            gold_pos = np.median(g, axis=0) > np.median(u, axis=0)

            def alone(u=u, g=g, gold_pos=gold_pos) -> np.ndarray:
                pairs = (
                    (g[:, i], u[:, i]) if p else (u[:, i], g[:, i]) for i, p in enumerate(gold_pos)
                )
                return np.array([example_epsilon(a, b) for a, b in pairs])

            batched_s, batched = median_seconds(lambda u=u, g=g: epsilons(u, g), args.repeats)
            alone_s, single = median_seconds(alone, args.repeats)
            same = np.array_equal(batched, single, equal_nan=True)
            print(
                f"  N = {k}: batched {batched_s:.3f} s, one example at a time {alone_s:.3f} s, "
                f"ratio {alone_s / batched_s:.1f}x; identical: {same}"
            )
            if not same:
                raise SystemExit("batched and one-at-a-time epsilons disagree")

    if args.threads:
        from mu_bench.evaluation import ceiling

        torch.set_num_threads(harness_threads)

        def pooled() -> float:
            return ceiling.pooled_forget_quality(unlearned[:8], gold, sets=8).mean

        threads, times = ceiling.MAX_THREADS, {1: [], ceiling.MAX_THREADS: []}
        values = {}
        for _ in range(args.repeats):  # alternating, so both see the same load
            for t in times:
                ceiling.MAX_THREADS = t
                start = time.perf_counter()
                values[t] = pooled()
                times[t].append(time.perf_counter() - start)
        ceiling.MAX_THREADS = threads
        one_s, many_s = statistics.median(times[1]), statistics.median(times[threads])
        pairs = statistics.median(a / b for a, b in zip(times[1], times[threads], strict=True))
        one, many = values[1], values[threads]
        print(
            f"  8 gold sets at N = 8: one thread {one_s:.3f} s, up to {threads} threads "
            f"{many_s:.3f} s, ratio {one_s / many_s:.2f}x (median of pairs {pairs:.2f}x); "
            f"same F: {one == many}"
        )
        if one != many:
            raise SystemExit("threaded and single-threaded F disagree")


if __name__ == "__main__":
    main()
