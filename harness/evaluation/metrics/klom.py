"""KLOM, "KL divergence of margins" (Georgiev et al., "Attribute-to-Delete: Machine
Unlearning via Datamodel Matching", ICLR 2025, arXiv 2410.23232, appendix E.1).

Per example x: the KL divergence between the distribution of x's margin under
unlearned models and its distribution under oracle (gold, retrained-without-the-forget-
set) models, each distribution estimated from N models by a shared histogram. 0 means
the unlearned models are indistinguishable from retraining on x; lower is better.

Source: RoyRin/data-unlearning-bench (EasyDUB, by two of the paper's authors; the KLOM
code of the paper's own benchmark), `unlearning_bench/eval.py` at eb261f9:
`get_margin` and `get_margins_from_multimodel_logits` (the margin),
`compute_binned_KL_div` (one example) and `kl_from_margins` (every example, called as
`compute_binned_KL_div(unlearned, oracle)`: KL(unlearned || oracle)). Per example:
1. Both samples clipped to [-100, 100].
2. 20 equal bins over the pooled range [min, max] (`np.linspace(min, max, 21)`); when
   min == max, the range is [min, min + 1].
3. Each sample binned with `np.digitize` and counted in bins 1..20. A value equal to
   the pooled maximum gets index 21 and is not counted (see "The top edge" below).
4. Counts / sample total (all zeros when nothing was counted); the oracle's
   probability raised to eps = 1e-5 where the unlearned side's is positive.
5. `scipy.stats.entropy(p, q)`, which renormalises both: sum p log(p / q).
The reference reports each split's (forget, retain, validation) 95th percentile of the
per-example values (`klom_95` in its `get_klom_stats`; also the 99th, mean and std):
`summary` gives those.

The margin (`margins`): logit of the label minus the log-sum-exp of the other logits,
z_y - log sum_{c != y} exp(z_c), from the same logits every other metric uses. It
equals log(p_y / (1 - p_y)), the challenge's logit-scaled confidence
(`confidence.logit_scaled_confidence`), computed without the softmax, so it neither
saturates at +-103.6 nor rounds 1 - p_y; KLOM's clip at +-100 makes the two agree
whenever the confidence is exact.

Small N: two samples of N margins in 20 bins overlap little, so KLOM is large even for
exact unlearning. Gold models against other gold models on digits-random10's forget set:
mean KLOM 6.6 at N = 8, 3.8 at N = 16, 1.7 at N = 32, 0.6 at N = 64 (p95 8.7, 5.8, 3.2,
1.2; digits-class3: means 7.4, 4.1, 1.8, 0.5); the cap, all unlearned mass where the
oracle has none, is log(1 / eps) = 11.5. The reference used 100 models per side. Report
KLOM beside that gold-against-gold floor at the same N.

How it is computed: all examples at once (the bins of every example in one array, a
sample's bin by counting the edges at or below it, which is `np.digitize`), instead of
the reference's Python loop over examples: about 6 ms for 1,000 examples at N = 8 and
0.1 s for CIFAR's 45,000 retain examples (the reference loop: about 0.5 s per 1,000).
The formula is the reference's, term by term (`tests/reference_metrics.py` transcribes
it; they agree to 1e-15 on random inputs, NaNs in the same places).

Deviations: scipy's `rel_entr` is written out with NumPy (p log(p / q), 0 where p = 0);
the two sides may hold different numbers of models (the reference asserts equal shapes;
nothing in the formula needs it); a non-finite margin (a diverged model) counts as the
least confident, -100, instead of NaN.

The top edge: `np.digitize` puts a value equal to the last edge beyond the last bin, so
the reference drops every sample that equals the pooled maximum (np.histogram would
count it in the last bin). With continuous margins that is one sample of one side per
example, a shift of 1/N of that side's mass. When a whole side sits at the maximum
(e.g. N copies of one model, a method that ignores its seed, whose margins all exceed
the gold models'), nothing of that side is counted: the reference's value is NaN when
it is the unlearned side; when it is the oracle's, its eps-floored histogram is
renormalised onto the unlearned side's bins (0 if those are one bin). mu-bench's `noop`
is such a method (every seed returns the one original model): at N = 8 the reference's
KLOM is NaN on all 146 forget examples of digits-class3 (and 46 of 144 on
digits-random10). `closed_top=True` counts the maximum in the last bin instead, so no
side is ever empty (noop then scores the cap, 11.5, on class 3); it is not the
reference's number (gold against gold at N = 8, it moves the p95 by 0.01 to 0.7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BINS = 20
EPS = 1e-5
CLIP = 100.0
CHUNK = 8192  # examples per vectorised pass


def margins(logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """z_y - logsumexp_{c != y} z_c per example, float64 (`get_margin`'s definition).

    Accepts (examples, classes) or (models, examples, classes) logits; non-finite
    logits give -inf (the least confident margin, -100 after KLOM's clip)."""
    z = torch.as_tensor(logits).detach().cpu().double()
    y = torch.as_tensor(labels).detach().cpu().long()
    if z.shape[-2] != len(y):
        raise ValueError(f"{z.shape[-2]} rows of logits but {len(y)} labels")
    if len(y) == 0:
        return np.zeros(z.shape[:-1])
    target = torch.nn.functional.one_hot(y, z.shape[-1]).bool().expand_as(z)
    correct = z.masked_fill(~target, -torch.inf).amax(dim=-1)
    others = z.masked_fill(target, -torch.inf).logsumexp(dim=-1)
    m = (correct - others).numpy()
    return np.where(np.isnan(m), -np.inf, m)


def _bin_probabilities(x: np.ndarray, edges: np.ndarray, closed_top: bool) -> np.ndarray:
    """(examples, bins) share of each example's samples in each bin: bins 1..B of
    `np.digitize(x, edges)` (a sample's index is the number of edges at or below it),
    divided by the number of samples counted (zeros where none was)."""
    n_bins = edges.shape[1] - 1
    idx = (x.T[:, :, None] >= edges[:, None, :]).sum(axis=2)  # (examples, models)
    if closed_top:
        idx = np.minimum(idx, n_bins)
    counts = (idx[:, :, None] == np.arange(1, n_bins + 1)).sum(axis=1).astype(np.float64)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / total, 0.0)


def klom(
    unlearned: np.ndarray,
    gold: np.ndarray,
    *,
    bins: int = BINS,
    eps: float = EPS,
    clip: float = CLIP,
    closed_top: bool = False,
) -> np.ndarray:
    """Per-example KL(unlearned || gold) of margin histograms, from (models, examples)
    margins of each side; NaN where the reference's is (the unlearned side empty)."""
    u = np.asarray(unlearned, np.float64)
    g = np.asarray(gold, np.float64)
    if u.ndim != 2 or g.ndim != 2 or u.shape[1] != g.shape[1]:
        raise ValueError(
            f"KLOM needs (models, examples) margins with the same examples on both sides, "
            f"got {u.shape} and {g.shape}"
        )
    if len(u) == 0 or len(g) == 0:
        raise ValueError("KLOM needs at least one model per side")
    u = np.clip(np.nan_to_num(u, nan=-clip), -clip, clip)
    g = np.clip(np.nan_to_num(g, nan=-clip), -clip, clip)
    if u.shape[1] > CHUNK:  # bounds the (examples, models, bins) temporaries
        parts = [
            klom(
                u[:, i : i + CHUNK],
                g[:, i : i + CHUNK],
                bins=bins,
                eps=eps,
                clip=clip,
                closed_top=closed_top,
            )
            for i in range(0, u.shape[1], CHUNK)
        ]
        return np.concatenate(parts)
    lo = np.minimum(u.min(axis=0), g.min(axis=0))
    hi = np.maximum(u.max(axis=0), g.max(axis=0))
    hi = np.where(lo >= hi, lo + 1, hi)
    edges = np.linspace(lo, hi, bins + 1, axis=1)  # (examples, bins + 1), as per example
    p = _bin_probabilities(u, edges, closed_top)
    q = _bin_probabilities(g, edges, closed_top)
    q = np.where(p > 0, np.maximum(q, eps), q)
    # scipy.stats.entropy: both renormalised, then sum of p log(p / q) (0 where p = 0).
    with np.errstate(invalid="ignore", divide="ignore"):
        p = p / p.sum(axis=1, keepdims=True)
        q = q / q.sum(axis=1, keepdims=True)
        terms = np.where(p > 0, p * np.log(p / q), np.where(np.isnan(p), np.nan, 0.0))
    return terms.sum(axis=1)


@dataclass(frozen=True)
class KlomSummary:
    p95: float  # the reference's headline number (`klom_95`)
    p99: float
    mean: float
    undefined: int  # examples whose KLOM is NaN (left out of the three above)


def summary(values: np.ndarray) -> KlomSummary:
    """The reference's statistics of a split's per-example KLOM (`get_klom_stats`)."""
    v = np.asarray(values, np.float64)
    ok = v[~np.isnan(v)]
    if len(ok) == 0:
        return KlomSummary(float("nan"), float("nan"), float("nan"), len(v))
    return KlomSummary(
        float(np.percentile(ok, 95)),
        float(np.percentile(ok, 99)),
        float(ok.mean()),
        int(len(v) - len(ok)),
    )
