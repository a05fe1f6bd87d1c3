"""KLOM: hand-made histograms with known answers, the reference's top-edge behaviour, the
margin, and equality with a literal transcription of the reference code."""

import math

import numpy as np
import pytest
import torch

from mu_bench.evaluation.metrics.confidence import logit_scaled_confidence
from mu_bench.evaluation.metrics.klom import EPS, klom, margins, summary

from .reference_metrics import klom_binned_kl, klom_kl_from_margins, klom_margins

# Point masses at 0 and 10 on a pooled range [0, 20]: 20 bins of width 1, so 0 falls
# in bin 1 and 10 in bin 11, and 20 (the pooled maximum) is the top edge.
FLOOR_KL = math.log((1 + EPS) / EPS)  # all unlearned mass where the oracle has none


def _col(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


def test_identical_samples_give_zero():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(16, 300)) * rng.uniform(0.1, 10, 300)
    assert np.all(klom(u, u.copy()) == 0.0)


def test_disjoint_samples_give_the_eps_floor():
    # Unlearned all in bin 1, oracle in bin 11 (its 20 sits on the top edge, uncounted):
    # q(bin 1) = eps / (1 + eps) after scipy's renormalisation.
    value = klom(_col(0, 0, 0, 0), _col(10, 10, 10, 20))
    assert value[0] == pytest.approx(FLOOR_KL, rel=1e-12)
    assert abs(FLOOR_KL - 11.5129) < 1e-4


def test_disjoint_continuous_samples_are_near_the_floor():
    rng = np.random.default_rng(1)
    u, g = rng.normal(size=(32, 50)), rng.normal(size=(32, 50)) + 30
    value = klom(u, g)
    # KL = -H(p) + log((1 + k eps) / eps) with p over k <= 20 bins: at least the floor
    # minus log 20.
    assert np.all(value > FLOOR_KL - math.log(20)) and np.all(value < FLOOR_KL)


def test_half_overlap_known_answer():
    # p = (1/2 in bin 1, 1/2 in bin 11), q = (1 in bin 11) floored to eps in bin 1.
    value = klom(_col(0, 0, 10, 10), _col(10, 10, 10, 20))
    expected = math.log(0.5 * (1 + EPS) / math.sqrt(EPS))
    assert value[0] == pytest.approx(expected, rel=1e-12)


def test_the_top_edge_as_the_reference_does_and_closed():
    # A point mass at the pooled maximum is not counted: the reference gives NaN when
    # the unlearned side is emptied...
    u, g = _col(20, 20, 20, 20), _col(0, 5, 10, 20)
    assert np.isnan(klom(u, g)[0]) and np.isnan(klom_binned_kl(u[:, 0], g[:, 0]))
    # ...and 0 when the oracle side is (eps-floored, renormalised to p's one bin).
    assert klom(_col(0, 0, 0, 0), _col(20, 20, 20, 20))[0] == 0.0
    # closed_top counts the maximum in the last bin: p = bin 20, q = 1/4 in bin 20.
    assert klom(u, g, closed_top=True)[0] == pytest.approx(math.log(4), rel=1e-12)
    closed = klom(_col(0, 0, 0, 0), _col(20, 20, 20, 20), closed_top=True)[0]
    assert closed == pytest.approx(FLOOR_KL, rel=1e-12)


def test_all_equal_values_use_a_unit_range_and_clip_at_100():
    assert klom(_col(3, 3), _col(3, 3))[0] == 0.0
    # 500 and 100 both clip to 100: the same point mass.
    assert klom(_col(500, 500), _col(100, 100))[0] == 0.0
    # A NaN margin (diverged model) counts as -100, not NaN.
    assert np.isfinite(klom(_col(np.nan, 1, 2), _col(0, 1, 2))[0])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="same examples"):
        klom(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least one model"):
        klom(np.zeros((0, 3)), np.zeros((4, 3)))


@pytest.mark.parametrize("n", [2, 8, 33])
def test_equals_the_reference_transcription(n):
    rng = np.random.default_rng(n)
    s = 400
    gold = rng.normal(size=(n, s)) * rng.uniform(0.05, 20, s) + rng.normal(0, 5, s)
    unlearned = rng.normal(size=(n, s)) * rng.uniform(0.05, 20, s) + rng.normal(0, 5, s)
    unlearned[:, :40] = np.round(unlearned[:, :40])  # ties, on the top edge too
    gold[:, :40] = np.round(gold[:, :40])
    unlearned[:, 40:60] *= 50  # beyond the clip
    unlearned[:, 60:70] = unlearned[0, 60:70]  # point masses
    gold[:, 70:75] = 7.0
    mine, ref = klom(unlearned, gold), klom_kl_from_margins(unlearned, gold)
    assert np.array_equal(np.isnan(mine), np.isnan(ref))
    assert np.nanmax(np.abs(mine - ref)) < 1e-6


def test_margin_is_label_logit_minus_logsumexp_of_the_others():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, -1.0], [30.0, -5.0, 0.0]])
    labels = torch.tensor([0, 2, 0])
    expected = [2 - math.log(2), -1 - math.log(1 + math.e), 30 - math.log(math.exp(-5) + 1)]
    assert margins(logits, labels) == pytest.approx(expected, rel=1e-12)
    # The reference's batched margin, and the challenge's confidence (the same quantity
    # through a softmax) where that is exact.
    stacked = torch.randn(3, 50, 10, dtype=torch.float64) * 4
    y = torch.randint(0, 10, (50,))
    ref = klom_margins(stacked, y).numpy()
    assert margins(stacked, y) == pytest.approx(ref, abs=1e-12)
    assert margins(stacked[0], y) == pytest.approx(logit_scaled_confidence(stacked[0], y), 1e-9)
    bad = torch.tensor([[float("nan"), 0.0]])
    assert margins(bad, torch.tensor([0]))[0] == -np.inf


def test_summary_is_the_reference_statistics():
    values = np.array([*range(100), np.nan], dtype=np.float64)
    s = summary(values)
    assert s.p95 == pytest.approx(94.05) and s.p99 == pytest.approx(98.01)
    assert s.mean == pytest.approx(49.5) and s.undefined == 1
