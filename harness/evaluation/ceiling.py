"""The forget-quality ceiling estimated from a pool of gold models, not from one draw.

The ceiling is the forget quality F (`metrics.forget_quality`) that exact unlearning
gets: N retrained models scored against N other retrained models. Today's
`scoring.ceiling` (`Reference.ceiling`) takes one such draw (holdout models 0..N-1 against
gold models 0..N-1); F of one draw varies from draw to draw by 4-7% of its mean on
digits-random10 and 10-19% on digits-class3 (N = 8 to 32, benchmarks/ceiling_spread.py;
today's digits-class3 draw at N = 8 sits 3.4 standard deviations low), and a method's
normalised F inherits that noise. Pooled from 4N models (2N at N = 32), the estimate's
spread across independent pools was 0.001-0.011 against 0.007-0.032 for a single draw
(from only 2 to 4 pools each: a rough figure).

Estimator: from a pool of M gold models (all retrained on the retain set with distinct
seeds, e.g. the gold and holdout sets together), draw ordered pairs (A, B) of disjoint
N-model sets, without replacement: each round shuffles the pool (a seeded permutation)
and cuts it into floor(M / 2N) consecutive pairs (A scored as the "unlearned" side, B as
the gold side), until `pairs` pairs. Every pair has the distribution of the single-draw
ceiling (two disjoint sets of N i.i.d. retrained models), so
- `mean`, the average F over the pairs, is an unbiased estimate of the expected ceiling
  E[F] at this N, with far less variance than one draw;
- `std`, the standard deviation of F over the pairs, estimates the spread of one draw
  (what a retrained method's F itself varies by);
- `se` is a conservative standard error of `mean`: `std / sqrt(floor(M / 2N))`, as if
  only the pairs of one round were independent (pairs of different rounds share
  models, so the naive std / sqrt(pairs) would be too small).
Disjoint and without replacement, not a bootstrap: resampling with replacement would put
one model twice in a set, or in both sets, and F sees a repeated model as a narrower
distribution (its 1% range rule and its thresholds), biasing the ceiling. M >= 2N is
required; with M = 2N every round is one split of the same pool, which still averages
over the C(2N, N) / 2 ways to split it.

A method's F has the same gold-side noise: its N models are scored against one set of N
gold models. `pooled_forget_quality` scores them against `sets` disjoint N-sets of the
pool instead (each round shuffles the pool and cuts floor(M / N) sets) and averages, so
that only the method's own draw of N models remains as noise; its ratio to the pooled
ceiling is then a normalised F whose spread is the method's alone (on digits-class3 at
N = 8, benchmarks/ceiling_spread.py: the standard deviation of F over gold sets is about
half of a single draw's).

Cost: one F per pair (digits' forget set of 130 examples at N = 8: about 0.04 s, so the
default 20 pairs take about 1 s; computed once per pool and cached at prepare time),
the draws scored on up to `MAX_THREADS` threads.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..isolation.pool import usable_cores
from .metrics.forget_quality import forget_quality


@dataclass(frozen=True)
class PooledF:
    mean: float  # the estimate: mean F over the draws
    std: float  # spread of a single draw's F (0 with one draw)
    se: float  # conservative standard error of `mean`
    values: np.ndarray  # F of each draw, in draw order
    n_models: int  # N per side
    pool: int  # M, the gold models the draws came from


def _check(confs: np.ndarray, what: str) -> np.ndarray:
    confs = np.asarray(confs, np.float64)
    if confs.ndim != 2:
        raise ValueError(f"need (models, examples) {what} confidences, got shape {confs.shape}")
    return confs


def _summary(values: list[float], independent: int, n: int, m: int) -> PooledF:
    v = np.array(values)
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    se = std / math.sqrt(min(independent, len(v)))
    return PooledF(float(v.mean()), std, se, v, n, m)


# Draws scored side by side, one per thread: a draw's F is vectorised NumPy and torch work
# that partly releases the GIL: 8 draws at N = 8 on digits, 1.1-1.2x faster on 2 cores
# (benchmarks/epsilon_speed.py --threads --repeats 9: alternating rounds, medians).
MAX_THREADS = 4


def _f_values(draws: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """F of each (unlearned, gold) draw, in order."""
    threads = min(len(draws), usable_cores(), MAX_THREADS)
    if threads < 2:
        return [forget_quality(u, g).value for u, g in draws]
    with ThreadPoolExecutor(threads, thread_name_prefix="mu-bench-f") as pool:
        return [fq.value for fq in pool.map(lambda d: forget_quality(*d), draws)]


def pooled_ceiling(confidences: np.ndarray, n: int, *, pairs: int = 20, seed: int = 0) -> PooledF:
    """The ceiling at N = `n` from (M, forget examples) confidences of M gold models."""
    confs = _check(confidences, "gold")
    m = len(confs)
    if n < 2 or m < 2 * n:
        raise ValueError(
            f"a ceiling at N = {n} needs N >= 2 and at least 2N = {2 * n} gold models in "
            f"the pool, got {m}"
        )
    if pairs < 1:
        raise ValueError(f"pairs must be at least 1, got {pairs}")
    rng = np.random.default_rng(seed)
    per_round = m // (2 * n)
    draws: list[tuple[np.ndarray, np.ndarray]] = []
    while len(draws) < pairs:
        order = rng.permutation(m)
        for r in range(min(per_round, pairs - len(draws))):
            a = order[2 * n * r : 2 * n * r + n]
            b = order[2 * n * r + n : 2 * n * (r + 1)]
            draws.append((confs[a], confs[b]))
    return _summary(_f_values(draws), per_round, n, m)


def pooled_forget_quality(
    unlearned: np.ndarray, gold_pool: np.ndarray, *, sets: int = 10, seed: int = 0
) -> PooledF:
    """A method's F: its N models' (N, forget examples) confidences against `sets`
    disjoint N-model sets of the gold pool (M, forget examples), averaged."""
    u, g = _check(unlearned, "unlearned"), _check(gold_pool, "gold")
    n, m = len(u), len(g)
    if u.shape[1] != g.shape[1]:
        raise ValueError(f"{u.shape[1]} forget examples on one side, {g.shape[1]} on the other")
    if n < 2 or m < n:
        raise ValueError(f"need N >= 2 unlearned models and at least N = {n} gold, got {m}")
    if sets < 1:
        raise ValueError(f"sets must be at least 1, got {sets}")
    rng = np.random.default_rng(seed)
    per_round = m // n
    draws: list[tuple[np.ndarray, np.ndarray]] = []
    while len(draws) < sets:
        order = rng.permutation(m)
        for r in range(min(per_round, sets - len(draws))):
            draws.append((u, g[order[n * r : n * (r + 1)]]))
    return _summary(_f_values(draws), per_round, n, m)
