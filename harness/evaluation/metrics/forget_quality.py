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
up. The examples are computed in batches, every rule of every example of a batch at
once (their rows of left thresholds stacked; `epsilons`), since a Python loop over
examples cost more than the rules themselves at N = 8. The thresholds are built exactly
as the reference builds them, and the results equal a literal brute-force transcription
of the reference (tests/reference_metrics.py). `benchmarks/epsilon_speed.py
--one-at-a-time` times both, and one example at a time, on the digits forget set of 130
examples (two runs, 3 Dec): at N = 64, 0.35-0.42 s against the brute force's 6.5-7.2 s
(16-20x); at N = 8, batched 2.4-3.1x faster than one example at a time (0.037-0.055 s
against 0.11-0.13 s; at N = 64 they are even).

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


def _candidates(
    first: torch.Tensor, n_thr: int | torch.Tensor, samples: tuple[np.ndarray, ...]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """For rows of sorted thresholds, from `first` (R, sum(N)), each row's index of its
    first threshold above each pooled sample (the samples' sets side by side, each
    sorted): candidate threshold indices J (R, M) and, per set, how many of its samples
    lie below threshold[i, J[i, m]]. `n_thr`: the rows' length (an int, or (R,) lengths).

    A count changes only where a threshold passes a sample, so every distinct pair of
    counts along a row is seen at j = 0 or at the first threshold above some sample:
    those 1 + sum(N) indices (clamped into the row) stand in for all the row's
    thresholds when fewer (the max of the epsilons over them is the max over every
    rule)."""
    r = first.shape[0]
    if isinstance(n_thr, int) and 1 + first.shape[1] >= n_thr:
        cand = torch.arange(n_thr).expand(r, -1).contiguous()
    else:
        cand = torch.cat([torch.zeros(r, 1, dtype=torch.int64), first], dim=1)
        last = n_thr - 1 if isinstance(n_thr, int) else (n_thr - 1)[:, None]
        cand = torch.minimum(cand, torch.as_tensor(last))
    ends = np.cumsum([0, *(x.shape[-1] for x in samples)])
    per_set = [first[:, a:b].contiguous() for a, b in zip(ends[:-1], ends[1:], strict=True)]
    return cand, [torch.searchsorted(f, cand, right=True) for f in per_set]


def _first_above_rows(
    start: np.ndarray, stop: np.ndarray, num: int, pooled: np.ndarray
) -> np.ndarray:
    """(R, S): for row i of `_row_linspace(start, stop, num)` and sample c, how many of the
    row's thresholds are <= pooled[c] (what `searchsorted(row, c, right=True)` returns),
    without building the (R, num) rows; `pooled` is (S,) for every row or (R, S), a
    row's own. Threshold j < num - 1 is j * step + start, computed with the same float64
    operations as `_row_linspace` (hence bit for bit the same values, non-decreasing in
    j); the last is `stop`. The count is estimated by division, then corrected against
    those exact values until it is right."""
    step = ((stop - start) / (num - 1))[:, None]
    lo = start[:, None]
    s = pooled[None, :] if pooled.ndim == 1 else pooled
    last = num - 2  # the last threshold built as j * step + start

    def moves(count: np.ndarray, s: np.ndarray, step: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """+1 where the count is too low (threshold `count` <= s), -1 where too high."""
        up = (count <= last) & (np.minimum(count, last) * step + lo <= s)
        down = (count > 0) & (np.maximum(count - 1, 0) * step + lo > s)
        return up.astype(np.int64) - down.astype(np.int64)

    count = np.clip(np.floor((s - lo) / step) + 1, 0, last + 1).astype(np.int64)
    # count = the first j <= last with value(j) > s (last + 1 when none): one pass over
    # every entry, then again only where the count moved, until nothing moves
    d = moves(count, s, step, lo)
    rows, cols = np.nonzero(d)
    d = d[rows, cols]
    while len(rows):
        count[rows, cols] += d
        own = s[rows if s.shape[0] > 1 else 0, cols]
        d = moves(count[rows, cols], own, step[rows, 0], lo[rows, 0])
        keep = np.flatnonzero(d)
        rows, cols, d = rows[keep], cols[keep], d[keep]
    return np.where(stop[:, None] <= s, num, count)


def _look_up(table: np.ndarray, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """`table[a, b]` for index tensors of one shape, as one take from the flat table."""
    return table.ravel().take((a * table.shape[1] + b).numpy())


def _segment_max(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The max of each consecutive segment of `values` (lengths >= 1)."""
    return np.maximum.reduceat(values, np.concatenate([[0], np.cumsum(lengths)[:-1]]))


def _single_best(sp: np.ndarray, sn: np.ndarray, delta: float) -> np.ndarray:
    """(E,): each example's best single-threshold epsilon (-inf: no rule survived), from
    its sorted positive (E, Np) and negative (E, Nn) samples. Positive when conf >= t;
    errors are positives below t and negatives at or above it."""
    best = np.full(len(sp), -np.inf)
    grids = [single_thresholds(p, n) for p, n in zip(sp, sn, strict=True)]
    lengths = np.array([len(t) for t in grids])
    has = np.flatnonzero(lengths)
    if not len(has):
        return best
    # one row per example, padded with +inf (never <= a sample, so never counted)
    rows = np.full((len(has), lengths.max()), np.inf)
    for row, i in enumerate(has):
        rows[row, : lengths[i]] = grids[i]
    pooled = np.concatenate([sp[has], sn[has]], axis=1)
    first = torch.searchsorted(torch.from_numpy(rows), torch.from_numpy(pooled), right=True)
    _, (pos_below, neg_below) = _candidates(
        first, torch.from_numpy(lengths[has]), (sp[has], sn[has])
    )
    table = epsilon_table(sp.shape[1], sn.shape[1], delta)
    eps = _look_up(table, sn.shape[1] - neg_below, pos_below)
    best[has] = eps.max(axis=1)
    return best


def _double_best(
    peaky: np.ndarray, wide: np.ndarray, width: np.ndarray, delta: float
) -> np.ndarray:
    """(E,): each example's best double-threshold epsilon, from its sorted peakier (E, Np)
    and wider (E, Nw) samples and the narrower range `width` (E,). The peakier sample is
    the positive one, predicted inside [l, r]: in = (<= r) - (< l), never below 0. The
    rows of every example are stacked: row k belongs to example `owner[k]`."""
    rights = [_double_threshold_rows(p, w)[2] for p, w in zip(peaky, width, strict=True)]
    lengths = np.array([len(r) for r in rights])
    owner = np.repeat(np.arange(len(peaky)), lengths)
    right = np.concatenate(rights)
    base = right - width[owner]  # the same float64 operations as `_double_threshold_rows`
    first = _first_above_rows(
        base - BUFFER, base + BUFFER, N_LEFT, np.concatenate([peaky, wide], axis=1)[owner]
    )
    _, (peaky_below, wide_below) = _candidates(torch.from_numpy(first), N_LEFT, (peaky, wide))
    right_t = torch.from_numpy(right)[:, None]
    peaky_upto = torch.searchsorted(torch.from_numpy(peaky[owner]), right_t, right=True)
    wide_upto = torch.searchsorted(torch.from_numpy(wide[owner]), right_t, right=True)
    false_pos = (wide_upto - wide_below).clamp_(min=0)
    false_neg = peaky.shape[1] - (peaky_upto - peaky_below).clamp_(min=0)
    table = epsilon_table(peaky.shape[1], wide.shape[1], delta)
    return _segment_max(_look_up(table, false_pos, false_neg).max(axis=1), lengths)


def _batch_epsilons(pos: np.ndarray, neg: np.ndarray, delta: float) -> np.ndarray:
    """(E,) epsilons of E examples from their positive (E, Np) and negative (E, Nn)
    samples, each example as `forget_quality`'s module docstring says (rules 2-4)."""
    pos_diff = pos.max(axis=1) - pos.min(axis=1)
    neg_diff = neg.max(axis=1) - neg.min(axis=1)
    largest = np.where(pos_diff > neg_diff, pos_diff, neg_diff)
    smallest = np.where(pos_diff > neg_diff, neg_diff, pos_diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        capped = (largest > 0) & (smallest / largest < PEAKY_RATIO)
    out = np.full(len(pos), EPSILON_CAP)
    rest = np.flatnonzero(~capped)
    if not len(rest):
        return out
    sp, sn = np.sort(pos[rest], axis=1), np.sort(neg[rest], axis=1)
    best = _single_best(sp, sn, delta)
    # the peakier sample: the narrower range; on a tie, `neg`
    peaky_neg = pos_diff[rest] >= neg_diff[rest]
    for mask, peaky, wide in ((peaky_neg, sn, sp), (~peaky_neg, sp, sn)):
        if mask.any():
            double = _double_best(peaky[mask], wide[mask], smallest[rest][mask], delta)
            best[mask] = np.maximum(best[mask], double)
    # no rule survived: 0 (the reference asserts there)
    out[rest] = np.where(best == -np.inf, 0.0, np.clip(best, 0.0, EPSILON_CAP))
    return out


def example_epsilon(pos: np.ndarray, neg: np.ndarray, delta: float = DELTA) -> float:
    """Epsilon of one forget example from its positive and negative samples."""
    one = _batch_epsilons(
        np.asarray(pos, np.float64)[None], np.asarray(neg, np.float64)[None], delta
    )
    return float(one[0])


# Stacked (rows x samples) entries per batch of examples (about 400 rows an example):
# large enough to amortise the per-call overhead at N = 8 (176 examples a batch), small
# enough to stay in cache at N = 64 (23).
BATCH_ENTRIES = 1_200_000


def epsilons(unlearned: np.ndarray, gold: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Per-example epsilons from (N, |D_f|) confidences of unlearned and gold models;
    NaN where both sides are the same point mass (undefined: the reference asserts).
    The examples are computed in batches, vectorised over all their rules at once."""
    unlearned, gold = np.asarray(unlearned, np.float64), np.asarray(gold, np.float64)
    gold_positive = np.median(gold, axis=0) > np.median(unlearned, axis=0)
    u_lo, u_hi, g_lo, g_hi = unlearned.min(0), unlearned.max(0), gold.min(0), gold.max(0)
    # both sides one and the same value
    undefined = (u_lo == u_hi) & (u_hi == g_lo) & (g_lo == g_hi)
    out = np.full(unlearned.shape[1], np.nan)
    for gold_pos in (True, False):
        pos, neg = (gold, unlearned) if gold_pos else (unlearned, gold)
        which = np.flatnonzero((gold_positive == gold_pos) & ~undefined)
        batch = max(1, BATCH_ENTRIES // (N_LEFT * (1 + len(pos) + len(neg))))
        for k in range(0, len(which), batch):
            idx = which[k : k + batch]
            out[idx] = _batch_epsilons(pos[:, idx].T, neg[:, idx].T, delta)
    return out


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
