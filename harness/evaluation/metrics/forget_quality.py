"""Forget quality F and the final score of the NeurIPS 2023 machine-unlearning challenge.

Source: google-deepmind/unlearning_evaluation, metric.py (`compute_forget_score_from_confs`,
`_get_epsilons`, `_get_single_threshold_rates`, `_get_double_threshold_rates`) and main.py
(`final_score`); the challenge's metric PDF, Algorithm 1. Input: the logit-scaled
confidence (`confidence.logit_scaled_confidence`) of every forget example under N
unlearned models (a method's seeds) and N gold models, arrays of shape (N, |D_f|).

Per forget example:
1. The positive side is whichever of the two samples has the larger median (gold on a
   strict `>`, else the unlearned side).
2. If the narrower sample's range is below 1% of the wider one's, epsilon = 50 (the cap).
3. Decision rules: single thresholds (predict positive when conf >= t; `torch.linspace`
   over the pooled range, 100 per unit) and double thresholds (predict the peakier
   sample inside [l, r]; right thresholds over [min + width - 2, max + 2] of the peakier
   sample at 100 per unit, 400 left thresholds over r - width +- 2, width = the narrower
   range).
4. Per rule, with delta = 1e-5: FPR = FNR = 0 gives infinity; exactly one of them 0
   discards the rule; otherwise epsilon = max(log(1 - delta - FPR) - log FNR,
   log(1 - delta - FNR) - log FPR), clipped at 0 (a term whose log is undefined is
   skipped, as `np.nanmax` skips it). The example's epsilon is the largest over
   surviving rules, clipped to [0, 50].
Then points per example: bins 0.5 wide up to ceil(ln(N - 1)), bin k worth 2^-k (beyond
the last bin, infinity and the cap included: 0). F = mean points. `score` = F x (RA_U /
RA_R) x (TA_U / TA_R), accuracies averaged over the N models of each side, not capped.

How it is computed: the reference code compares every rule against every sample on a
GPU (about 160,000 double-threshold rules per example). Here the samples are sorted and
a rule's two error counts are read off with binary searches (`searchsorted`: samples
below l, at most r), vectorised over all rules of an example. Along a row of left
thresholds the counts change only where a threshold passes a sample, so only the
first threshold above each sample (and the first of the row) needs its counts: 2N + 1
rules stand in for the row's 400 when fewer; that index is computed from the row's
start and step (`_first_above_rows`, exact, with no (rows, 400) array built: 1.6x
faster for N = 8 than searching built rows). A rule's epsilon depends only on its two
error counts, so the epsilons of all (N + 1)^2 count pairs are computed once and looked
up. The thresholds are built exactly as the reference builds them, and the results
equal a literal brute-force transcription of the reference (tests/reference_metrics.py;
benchmarks/epsilon_speed.py times both: 0.8 s against 16 s for N = 64 on the digits
forget set of 144 examples, about 5 ms per example; at N = 8, about 2 ms per example:
9 s for CIFAR's 4,500, benchmarks/metrics_at_scale.py).

Deviations, each without effect on F: rates are exact fractions in float64 (the
reference averages float32 indicators; epsilons differ by < 1e-6, and a bin edge at a
multiple of 0.5 is never an exact log-ratio of such counts); where no rule survives,
epsilon is 0 (the reference stops on an assertion there: it happens only when the grid
cannot tell the samples apart).

Undefined examples: where both sides are the same point mass (every model of both sides
gives the example one and the same confidence, e.g. all saturated at the guard's bound),
no rule survives and the reference refuses (an assertion) rather than call the sides
indistinguishable. Such an example's epsilon and points are NaN and F is the mean over
the others (`undefined` counts them; the report notes it); when every example is
undefined, F is NaN (undefined), never the 1.0 an epsilon of 0 would give.

Small N: epsilon is estimated from N samples per side and maximised over thousands of
rules, so F is biased low even for a perfect method (about 0.17-0.19 for two identical
Gaussians at N = 8 to 64), and with N = 2 there are no bins at all (F = 0). Compare F
with `forget_quality_ceiling` (gold scored against an independent gold set at the same
N). A method that ignores its seed gives the same model N times: a point mass, range 0,
so every example hits the 1% rule and F = 0, as the challenge's rules intend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
BUFFER = 2.0  # the double-threshold family's search window around r - width
PEAKY_RATIO = 0.01  # narrower range below this share of the wider one: epsilon = cap
BIN_WIDTH = 0.5
N_LEFT = int(np.ceil(2 * BUFFER * THRESHOLDS_PER_UNIT))  # left thresholds per right one: 400


@dataclass(frozen=True)
class ForgetQuality:
    value: float  # F, the mean points over forget examples
    epsilons: np.ndarray  # (|D_f|,) per-example epsilon, in [0, 50]
    points: np.ndarray  # (|D_f|,)
    n_models: int
    undefined: int = 0  # examples where both sides are the same point mass (NaN epsilon)


def single_thresholds(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """The single-threshold grid: `torch.linspace` (float32, as the reference's default
    dtype) over the pooled range, ceil(100 x range) thresholds."""
    pooled = np.concatenate([pos, neg])
    lo, hi = float(pooled.min()), float(pooled.max())
    n = int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT))
    return torch.linspace(lo, hi, n, dtype=torch.float32).double().numpy()


def double_thresholds(peaky: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """(left (R, 400), right (R,)): right thresholds over [min + width - 2, max + 2] of the
    peakier sample, 100 per unit; for each, 400 left thresholds over r - width +- 2."""
    start, stop, right = _double_threshold_rows(peaky, width)
    return _row_linspace(start, stop, N_LEFT), right


def _double_threshold_rows(
    peaky: np.ndarray, width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The double-threshold grid without its (R, 400) left rows: their starts and stops
    (each row is `np.linspace(start, stop, 400)`), and the right thresholds."""
    lo = peaky.min() + width - BUFFER
    hi = peaky.max() + BUFFER
    right = np.linspace(lo, hi, num=int(np.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    base = right - width
    return base - BUFFER, base + BUFFER, right


def _row_linspace(start: np.ndarray, stop: np.ndarray, num: int) -> np.ndarray:
    """`np.linspace(start[i], stop[i], num)` as row i, with np.linspace's own arithmetic
    (i * step + start, the last value = stop), laid out row-major with no copy."""
    step = (stop - start) / (num - 1)
    rows = np.arange(num, dtype=np.float64)[None, :] * step[:, None]
    rows += start[:, None]
    rows[:, -1] = stop
    return rows


@lru_cache(maxsize=64)
def epsilon_table(n_positive: int, n_negative: int, delta: float = DELTA) -> np.ndarray:
    """Epsilon of a rule with `a` false positives and `b` false negatives at [a, b]:
    +inf for a perfect rule, -inf for a discarded one (so a max ignores it)."""
    fpr = (np.arange(n_negative + 1) / n_negative)[:, None]
    fnr = (np.arange(n_positive + 1) / n_positive)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.fmax(np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr))
    eps = np.clip(eps, 0, None)
    eps[np.isnan(eps)] = -np.inf  # both terms undefined (FPR = FNR = 1): no epsilon
    eps[0, :] = -np.inf  # exactly one rate 0: discarded
    eps[:, 0] = -np.inf
    eps[0, 0] = np.inf  # perfect separation
    eps.setflags(write=False)
    return eps


def _counts_below(
    thresholds: torch.Tensor, samples: tuple[np.ndarray, ...]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """For rows of sorted thresholds (R, L) and sorted sample sets: candidate threshold
    indices J (R, M) and, per set, how many samples lie below threshold[i, J[i, m]].

    A count changes only where a threshold passes a sample, so every distinct pair of
    counts along a row is seen at j = 0 or at the first threshold above some sample:
    those 1 + sum(N) indices stand in for all L thresholds when fewer (the max of the
    epsilons over them is the max over every rule)."""
    pooled = torch.from_numpy(np.concatenate(samples)).expand(thresholds.shape[0], -1)
    # first[i, c]: index of the first threshold of row i above sample c (c < t[j] iff j >= it)
    first = torch.searchsorted(thresholds, pooled.contiguous(), right=True)
    return _candidates(first, thresholds.shape[1], samples)


def _candidates(
    first: torch.Tensor, n_thr: int, samples: tuple[np.ndarray, ...]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """`_counts_below` from `first` (R, sum(N)): each row's index of its first threshold
    above each pooled sample."""
    r = first.shape[0]
    if 1 + first.shape[1] < n_thr:
        cand = torch.cat([torch.zeros(r, 1, dtype=torch.int64), first], dim=1)
        cand = cand.clamp_(max=n_thr - 1)
    else:
        cand = torch.arange(n_thr).expand(r, -1).contiguous()
    ends = np.cumsum([0, *(len(x) for x in samples)])
    per_set = [first[:, a:b].contiguous() for a, b in zip(ends[:-1], ends[1:], strict=True)]
    return cand, [torch.searchsorted(f, cand, right=True) for f in per_set]


def _first_above_rows(
    start: np.ndarray, stop: np.ndarray, num: int, pooled: np.ndarray
) -> np.ndarray:
    """(R, S): for row i of `_row_linspace(start, stop, num)` and sample c, how many of the
    row's thresholds are <= pooled[c] (what `searchsorted(row, c, right=True)` returns),
    without building the (R, num) rows. Threshold j < num - 1 is j * step + start, computed
    with the same float64 operations as `_row_linspace` (hence bit for bit the same
    values, non-decreasing in j); the last is `stop`. The count is estimated by division,
    then corrected against those exact values until it is right."""
    step = ((stop - start) / (num - 1))[:, None]
    lo, s = start[:, None], pooled[None, :]
    last = num - 2  # the last threshold built as j * step + start

    def value(j: np.ndarray) -> np.ndarray:
        return j.astype(np.float64) * step + lo

    count = np.clip(np.floor((s - lo) / step) + 1, 0, last + 1).astype(np.int64)
    while True:  # count = the first j <= last with value(j) > s (last + 1 when none)
        up = (count <= last) & (value(np.minimum(count, last)) <= s)
        down = (count > 0) & (value(np.maximum(count - 1, 0)) > s)
        if not (up.any() or down.any()):
            break
        count += up.astype(np.int64) - down.astype(np.int64)
    return np.where(stop[:, None] <= s, num, count)


def example_epsilon(pos: np.ndarray, neg: np.ndarray, delta: float = DELTA) -> float:
    """Epsilon of one forget example from its positive and negative samples."""
    pos_diff, neg_diff = pos.max() - pos.min(), neg.max() - neg.min()
    largest, smallest = (pos_diff, neg_diff) if pos_diff > neg_diff else (neg_diff, pos_diff)
    if largest > 0 and smallest / largest < PEAKY_RATIO:
        return EPSILON_CAP
    best = -np.inf
    sp, sn = np.sort(pos), np.sort(neg)
    # Single thresholds: positive when conf >= t; errors are positives below t and
    # negatives at or above it.
    t = single_thresholds(pos, neg)
    if len(t):
        _, (pos_below, neg_below) = _counts_below(torch.from_numpy(t)[None, :], (sp, sn))
        table = epsilon_table(len(pos), len(neg), delta)
        best = max(best, table[(len(neg) - neg_below).numpy(), pos_below.numpy()].max())
    # Double thresholds: the peakier sample (the narrower range; on a tie, `neg`) is the
    # positive one, predicted inside [l, r]: in = (<= r) - (< l), never below 0.
    peaky, wide = (sn, sp) if pos_diff >= neg_diff else (sp, sn)
    left_start, left_stop, right = _double_threshold_rows(peaky, smallest)
    first = _first_above_rows(left_start, left_stop, N_LEFT, np.concatenate([peaky, wide]))
    _, (peaky_below, wide_below) = _candidates(torch.from_numpy(first), N_LEFT, (peaky, wide))
    peaky_upto = torch.from_numpy(np.searchsorted(peaky, right, side="right"))[:, None]
    wide_upto = torch.from_numpy(np.searchsorted(wide, right, side="right"))[:, None]
    false_pos = (wide_upto - wide_below).clamp_(min=0)
    false_neg = len(peaky) - (peaky_upto - peaky_below).clamp_(min=0)
    table = epsilon_table(len(peaky), len(wide), delta)
    best = max(best, table[false_pos.numpy(), false_neg.numpy()].max())
    if best == -np.inf:
        return 0.0  # no rule survived (the reference asserts here)
    return float(min(max(best, 0.0), EPSILON_CAP))


def epsilons(unlearned: np.ndarray, gold: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Per-example epsilons from (N, |D_f|) confidences of unlearned and gold models;
    NaN where both sides are the same point mass (undefined: the reference asserts)."""
    unlearned, gold = np.asarray(unlearned, np.float64), np.asarray(gold, np.float64)
    gold_positive = np.median(gold, axis=0) > np.median(unlearned, axis=0)
    out = np.empty(unlearned.shape[1])
    for i in range(unlearned.shape[1]):
        u, g = unlearned[:, i], gold[:, i]
        if same_point_mass(u, g):
            out[i] = np.nan
            continue
        out[i] = example_epsilon(g, u, delta) if gold_positive[i] else example_epsilon(u, g, delta)
    return out


def same_point_mass(a: np.ndarray, b: np.ndarray) -> bool:
    """Both samples are one and the same value."""
    return bool(a.min() == a.max() == b.min() == b.max())


def n_bins(n_models: int) -> int:
    """Bins of width 0.5 up to ceil(ln(N - 1)): 0 for N = 2, 14 for N = 512."""
    return int(math.ceil(math.log(n_models - 1)) / BIN_WIDTH) if n_models > 2 else 0


def points(eps: np.ndarray, n_models: int) -> np.ndarray:
    """2^-k points for an epsilon in bin k = [0.5k, 0.5(k + 1)); 0 beyond the last bin;
    NaN for an undefined (NaN) epsilon."""
    k = np.floor(np.asarray(eps, np.float64) / BIN_WIDTH)
    return np.where(np.isnan(k), np.nan, np.where(k < n_bins(n_models), 0.5**k, 0.0))


def forget_quality(unlearned: np.ndarray, gold: np.ndarray) -> ForgetQuality:
    """F: the mean points of the per-example epsilons over the defined examples (NaN
    when none is); N is the unlearned side's count."""
    n = np.shape(unlearned)[0]
    if n < 2 or np.shape(gold)[0] < 2:
        raise ValueError(f"forget quality needs at least 2 models per side, got {n}")
    eps = epsilons(unlearned, gold)
    pts = points(eps, n)
    defined = pts[~np.isnan(pts)]
    value = float(defined.mean()) if len(defined) else float("nan")
    return ForgetQuality(value, eps, pts, n, int(len(pts) - len(defined)))


def score(f: float, ra_u: float, ra_r: float, ta_u: float, ta_r: float) -> float:
    """The challenge's final score: F x (RA_U / RA_R) x (TA_U / TA_R), ratios not capped."""
    return f * (ra_u / ra_r) * (ta_u / ta_r)
