"""Forget quality: hand-made cases with known answers, the bins, and equality with a
literal brute-force transcription of the challenge's metric.py on the same inputs."""

import math

import numpy as np
import pytest

from mu_bench.evaluation.metrics import forget_quality as fq_module
from mu_bench.evaluation.metrics.forget_quality import (
    DELTA,
    EPSILON_CAP,
    N_LEFT,
    _first_above_rows,
    _row_linspace,
    double_thresholds,
    epsilons,
    example_epsilon,
    forget_quality,
    n_bins,
    points,
    score,
)

from .reference_metrics import challenge_forget_score


def _samples(seed: int, n: int, s: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.3, 3.0, size=s)
    gold = rng.normal(size=(n, s)) * scale
    unlearned = rng.normal(size=(n, s)) * scale * rng.uniform(0.5, 2.0, size=s) + shift * scale
    return unlearned, gold


def test_identical_samples_give_epsilon_zero_and_full_points():
    unlearned, _ = _samples(0, 16, 20)
    fq = forget_quality(unlearned, unlearned.copy())
    assert np.all(fq.epsilons == 0.0)
    assert fq.value == 1.0


def test_perfectly_separated_samples_give_no_points():
    gold = np.random.default_rng(1).normal(size=(16, 12))
    fq = forget_quality(gold + 20.0, gold)
    assert np.all(fq.epsilons == EPSILON_CAP)  # infinity, clipped to the cap
    assert fq.value == 0.0


def test_a_point_mass_hits_the_peaky_rule_and_scores_zero():
    """A method that ignores its seed returns N identical models: F = 0."""
    gold = np.random.default_rng(2).normal(size=(8, 10))
    same = np.tile(gold.mean(axis=0), (8, 1))  # inside gold's range, but zero spread
    fq = forget_quality(same, gold)
    assert np.all(fq.epsilons == EPSILON_CAP) and fq.value == 0.0


def test_the_same_point_mass_on_both_sides_is_undefined_not_one():
    """No rule survives and the reference asserts: epsilon NaN, F undefined (NaN)."""
    same = np.full((4, 3), 1.5)
    assert np.all(np.isnan(epsilons(same, same.copy())))
    fq = forget_quality(same, same.copy())
    assert np.isnan(fq.value) and fq.undefined == 3


def test_undefined_examples_are_left_out_of_f():
    """Two examples with a shared point mass, one perfectly separated (0 points), one
    identical (1 point): F = 0.5 over the two defined ones."""
    rng = np.random.default_rng(5)
    gold = rng.normal(size=(8, 4))
    unlearned = gold.copy()
    gold[:, :2] = unlearned[:, :2] = 103.6  # saturated on both sides
    unlearned[:, 2] += 20.0
    fq = forget_quality(unlearned, gold)
    assert fq.undefined == 2 and np.isnan(fq.epsilons[:2]).all()
    assert fq.points[2:].tolist() == [0.0, 1.0] and fq.value == 0.5


def test_a_hand_computed_epsilon():
    """N = 3: pos {0, 5, 6}, neg {1, 2, 7}. No rule separates them; the best rules err
    on one of three on each side (t = 3: FPR = FNR = 1/3), so epsilon =
    log(1 - delta - 1/3) - log(1/3) = log(2 - 3 delta), in the bin [0.5, 1): 0.5 points."""
    pos, neg = np.array([0.0, 5.0, 6.0]), np.array([1.0, 2.0, 7.0])
    eps = example_epsilon(pos, neg)
    assert eps == pytest.approx(math.log(2 - 3 * DELTA), abs=1e-12)
    # As F: gold (larger median) is the positive side.
    fq = forget_quality(neg[:, None], pos[:, None])
    assert fq.epsilons[0] == pytest.approx(eps, abs=1e-12)
    assert fq.value == 0.5


def test_bins_follow_the_challenge():
    assert [n_bins(n) for n in (2, 3, 8, 9, 16, 64, 512)] == [0, 2, 4, 6, 6, 10, 14]
    eps = np.array([0.0, 0.49, 0.5, 0.99, 1.0, 6.49, 6.5, 6.99, 7.0, 50.0])
    expected = [1, 1, 0.5, 0.5, 0.25, 2.0**-12, 2.0**-13, 2.0**-13, 0, 0]
    assert points(eps, 512).tolist() == expected
    assert points(np.array([0.0, 0.7]), 2).tolist() == [0.0, 0.0]  # N = 2: no bins at all


def test_threshold_grid_is_the_reference_grid_bit_for_bit():
    peaky = np.random.default_rng(3).normal(size=16)
    width = 0.37
    left, right = double_thresholds(peaky, width)
    lo, hi = peaky.min() + width - 2.0, peaky.max() + 2.0
    expected_right = np.linspace(lo, hi, num=int(np.ceil((hi - lo) * 100)))
    np.testing.assert_array_equal(right, expected_right)
    for row, tr in zip(left, expected_right, strict=True):
        np.testing.assert_array_equal(row, np.linspace(tr - width - 2.0, tr - width + 2.0, num=400))


def test_counts_read_off_the_rows_equal_a_search_in_the_built_rows():
    """The double thresholds' counts, computed without building the (R, 400) rows, equal
    `searchsorted` in the rows themselves, for samples that sit exactly on thresholds
    (every row's), on each row's ends, and outside every row."""
    rng = np.random.default_rng(7)
    start = np.sort(rng.normal(size=300)) * 3
    stop = start + 4.0 + rng.normal(scale=1e-12, size=300)  # (stop - start) varies in its last bits
    rows = _row_linspace(start, stop, N_LEFT)
    on = rows[rng.integers(0, 300, 40), rng.integers(0, N_LEFT, 40)]
    near = np.nextafter(on, np.inf), np.nextafter(on, -np.inf)
    ends = np.concatenate([start[:5], stop[:5], [start.min() - 1, stop.max() + 1]])
    samples = np.concatenate([on, *near, ends, rng.normal(size=60) * 4])
    expected = np.stack([np.searchsorted(row, samples, side="right") for row in rows])
    np.testing.assert_array_equal(_first_above_rows(start, stop, N_LEFT, samples), expected)


@pytest.mark.parametrize(("n_u", "n_g"), [(8, 8), (5, 9)])
def test_examples_computed_together_equal_each_computed_alone(monkeypatch, n_u, n_g):
    """The batched path (several batches, both positive sides, both peakier sides, capped
    and undefined examples mixed in) gives each example the epsilon it gets alone."""
    monkeypatch.setattr(fq_module, "BATCH_ENTRIES", N_LEFT * (1 + n_u + n_g) * 7)  # 7 a batch
    rng = np.random.default_rng(11)
    s = 40
    scale = rng.uniform(0.2, 3.0, size=s)
    unlearned = rng.normal(size=(n_u, s)) * scale * rng.uniform(0.3, 3.0, size=s)
    gold = rng.normal(size=(n_g, s)) * scale + rng.normal(size=s)
    unlearned[:, 0] = 1.5  # a point mass: capped
    unlearned[:, 1], gold[:, 1] = 2.0, 2.0  # the same point mass: undefined
    unlearned[:, 2:6] = unlearned[:, 2:6].round(1)  # ties
    gold_positive = np.median(gold, axis=0) > np.median(unlearned, axis=0)
    assert 0 < gold_positive.sum() < s  # both sides positive somewhere
    together = epsilons(unlearned, gold)
    alone = [
        example_epsilon(gold[:, i], unlearned[:, i])
        if gold_positive[i]
        else example_epsilon(unlearned[:, i], gold[:, i])
        for i in range(2, s)
    ]
    assert np.isnan(together[1]) and together[0] == EPSILON_CAP
    np.testing.assert_array_equal(together[2:], alone)
    assert len(set(together[2:].round(6))) > 5  # distinct values: a mix-up would show


def test_score_multiplies_the_utility_ratios_uncapped():
    assert score(0.5, 0.99, 0.9, 0.8, 0.8) == pytest.approx(0.5 * 1.1)


@pytest.mark.parametrize(
    ("n", "s", "shift", "decimals"),
    [(2, 12, 0.0, None), (3, 16, 0.5, None), (8, 12, 0.0, 1), (16, 8, 1.0, None), (8, 8, 3, 2)],
)
def test_equals_the_brute_force_transcription_of_the_reference(n, s, shift, decimals):
    """Every rule against every sample, as metric.py does on a GPU: identical epsilons
    with exact rates, within 1e-6 of the reference's float32 rates, the same F."""
    unlearned, gold = _samples(10 + n, n, s, shift)
    if decimals is not None:  # ties between samples and at the range ends
        unlearned, gold = unlearned.round(decimals), gold.round(decimals)
    fq = forget_quality(unlearned, gold)
    f64, eps64 = challenge_forget_score(unlearned, gold, rate_dtype=np.float64)
    np.testing.assert_array_equal(fq.epsilons, eps64)
    assert fq.value == f64
    f32, eps32 = challenge_forget_score(unlearned, gold, rate_dtype=np.float32)
    np.testing.assert_allclose(fq.epsilons, eps32, rtol=0, atol=1e-6)
    assert fq.value == f32
    if n > 2:  # finite, non-zero epsilons were exercised (N = 2 gives only 0 or the cap)
        assert np.count_nonzero((fq.epsilons > 0) & (fq.epsilons < EPSILON_CAP)) > 0


@pytest.mark.parametrize(
    ("n", "shift", "published"), [(16, 0.0, 0.19), (64, 0.0, 0.16), (16, 1.0, 0.10)]
)
def test_small_n_bias_matches_the_challenge_code(n, shift, published):
    """METRICS.md: the challenge's own code gives F = 0.19 (N = 16) and 0.16 (N = 64) for
    two identical Gaussians and 0.10 (N = 16) for a one-sd shift."""
    rng = np.random.default_rng(n)
    gold = rng.normal(size=(n, 300))
    unlearned = rng.normal(size=(n, 300)) + shift
    assert forget_quality(unlearned, gold).value == pytest.approx(published, abs=0.04)


def test_needs_two_models_per_side():
    with pytest.raises(ValueError, match="at least 2"):
        forget_quality(np.zeros((1, 3)), np.zeros((4, 3)))
