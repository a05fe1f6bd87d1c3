"""The pooled forget-quality ceiling: disjoint pairs drawn without replacement, its
statistics, its refusals, and a known value for identically distributed models."""

import math

import numpy as np
import pytest

from mu_bench.evaluation import ceiling
from mu_bench.evaluation.ceiling import pooled_ceiling, pooled_forget_quality
from mu_bench.evaluation.metrics.forget_quality import forget_quality


def _pool(models: int, examples: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(models, examples)) * rng.uniform(0.5, 2.0, size=examples)


def test_pairs_are_disjoint_sets_of_distinct_pool_models(monkeypatch):
    pool = _pool(20)
    seen = []

    def spy(a, b):
        seen.append((a.copy(), b.copy()))
        return forget_quality(a, b)

    monkeypatch.setattr(ceiling, "forget_quality", spy)
    est = pooled_ceiling(pool, 4, pairs=7, seed=3)
    assert len(seen) == 7 and len(est.values) == 7
    rows = {row.tobytes(): i for i, row in enumerate(pool)}
    for a, b in seen:
        ia = [rows[r.tobytes()] for r in a]
        ib = [rows[r.tobytes()] for r in b]
        assert len(set(ia)) == 4 and len(set(ib)) == 4  # no model twice in a set
        assert not set(ia) & set(ib)  # no model on both sides
    # Two pairs per round (floor(20 / 8)): the first two pairs partition 16 models.
    first = {rows[r.tobytes()] for a, b in seen[:2] for r in (*a, *b)}
    assert len(first) == 16


def test_statistics_of_the_pairs():
    est = pooled_ceiling(_pool(24), 4, pairs=9, seed=1)
    assert est.mean == pytest.approx(est.values.mean())
    assert est.std == pytest.approx(est.values.std(ddof=1))
    assert est.se == pytest.approx(est.std / math.sqrt(3))  # 3 disjoint pairs per round
    assert (est.n_models, est.pool) == (4, 24)
    again = pooled_ceiling(_pool(24), 4, pairs=9, seed=1)
    assert np.array_equal(est.values, again.values)
    assert not np.array_equal(est.values, pooled_ceiling(_pool(24), 4, pairs=9, seed=2).values)


def test_one_pair_is_todays_single_draw():
    pool = _pool(8)
    est = pooled_ceiling(pool, 4, pairs=1, seed=0)
    order = np.random.default_rng(0).permutation(8)
    assert est.mean == forget_quality(pool[order[:4]], pool[order[4:]]).value
    assert est.std == 0.0 and est.se == 0.0


def test_refuses_a_pool_too_small():
    with pytest.raises(ValueError, match="at least 2N = 16"):
        pooled_ceiling(_pool(15), 8)
    with pytest.raises(ValueError, match="N >= 2"):
        pooled_ceiling(_pool(15), 1)
    with pytest.raises(ValueError, match="pairs"):
        pooled_ceiling(_pool(16), 8, pairs=0)


def test_identically_distributed_models_give_the_known_small_n_ceiling():
    """Gold models that are i.i.d. draws of one Gaussian per example: F at N = 8 is
    biased low to about 0.17-0.19 (metrics/forget_quality.py's docstring), and the
    pooled mean is much closer to it than the spread of a single draw."""
    est = pooled_ceiling(_pool(64, examples=24, seed=5), 8, pairs=8, seed=0)
    assert 0.1 < est.mean < 0.3
    assert est.se < est.std


def test_pooled_forget_quality_scores_the_method_against_disjoint_gold_sets(monkeypatch):
    pool, method = _pool(20), _pool(4, seed=9)
    seen = []

    def spy(a, b):
        seen.append((a.copy(), b.copy()))
        return forget_quality(a, b)

    monkeypatch.setattr(ceiling, "forget_quality", spy)
    est = pooled_forget_quality(method, pool, sets=6, seed=2)
    assert len(seen) == 6 and est.mean == pytest.approx(np.mean(est.values))
    rows = {row.tobytes(): i for i, row in enumerate(pool)}
    sets = [[rows[r.tobytes()] for r in b] for a, b in seen]
    assert all(np.array_equal(a, method) for a, _ in seen)  # the method's models, whole
    assert all(len(set(s)) == 4 for s in sets)
    first_round = [i for s in sets[:5] for i in s]  # floor(20 / 4) = 5 sets per round
    assert len(set(first_round)) == 20
    assert est.se == pytest.approx(est.std / math.sqrt(5))


def test_pooled_forget_quality_refusals():
    with pytest.raises(ValueError, match="forget examples"):
        pooled_forget_quality(_pool(4, examples=5), _pool(8))
    with pytest.raises(ValueError, match="at least N = 4 gold"):
        pooled_forget_quality(_pool(4), _pool(3))
