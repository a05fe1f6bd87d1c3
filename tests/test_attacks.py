"""Confidence statistics, SalUn's MIA-efficacy, the loss MIA, indiscernibility, LiRA and
SalUn's avg_gap: hand-made cases with known answers, and each against a straightforward
transcription of its published code on the same random inputs (to 1e-6)."""

import numpy as np
import pytest
import torch

from mu_bench.evaluation.metrics.confidence import logit_scaled_confidence, true_class_probability
from mu_bench.evaluation.metrics.lira import gaussian, lira_attack, membership_scores
from mu_bench.evaluation.metrics.mia import indiscernibility, mia_efficacy, mia_loss_acc
from mu_bench.evaluation.scoring import aggregate

from .reference_metrics import carlini_lira, challenge_confidence, salun_mia_efficacy


def _logits(seed: int, n: int = 500, classes: int = 10, scale: float = 5.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, classes, generator=g) * scale, torch.randint(classes, (n,), generator=g)


def test_logit_scaled_confidence_matches_the_challenge_code():
    logits, y = _logits(0)
    ours = logit_scaled_confidence(logits, y)
    np.testing.assert_allclose(ours, challenge_confidence(logits.numpy(), y.numpy()), atol=1e-6)
    assert ours.dtype == np.float64


def test_logit_scaled_confidence_known_values():
    # two classes, logits (a, 0): p_y / p_other = e^a, so the statistic is exactly +-a
    logits = torch.tensor([[3.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 1, 0])
    np.testing.assert_allclose(logit_scaled_confidence(logits, y), [3.0, -3.0, 0.0], atol=1e-12)
    # a confident model is not cancelled to 0: sum of the wrong classes, not 1 - p_y
    assert logit_scaled_confidence(torch.tensor([[60.0, 0.0]]), torch.tensor([0]))[0] == (
        pytest.approx(60.0, abs=1e-9)
    )
    # a diverged model still gives a number: the least confident one
    bad = logit_scaled_confidence(torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]))
    assert np.isfinite(bad).all()


def test_true_class_probability_is_the_softmax_of_the_label():
    logits, y = _logits(1)
    expected = torch.softmax(logits.double(), dim=1)[torch.arange(len(y)), y].numpy()
    np.testing.assert_allclose(true_class_probability(logits, y), expected, atol=1e-12)


def test_mia_efficacy_known_answers():
    rng = np.random.default_rng(0)
    retain = np.ones(400)  # members: certain of their label
    test = rng.uniform(0.2, 0.6, 300)  # non-members: unsure
    assert mia_efficacy(retain, test, np.ones(50)) == 0.0  # forget looks like retain
    assert mia_efficacy(retain, test, rng.uniform(0.2, 0.6, 50)) >= 0.95  # like test


def test_mia_efficacy_matches_salun_code():
    rng = np.random.default_rng(1)
    retain = 1 - rng.beta(0.3, 8, size=600) ** 2
    test = 1 - rng.beta(0.6, 5, size=250)
    forget = 1 - rng.beta(0.45, 6, size=120)
    ours = mia_efficacy(retain, test, forget)
    assert ours == pytest.approx(salun_mia_efficacy(retain, test, forget), abs=1e-6)
    assert 0.05 < ours < 0.95  # a non-trivial case


def test_loss_mia_at_chance_on_identical_distributions_and_indiscernibility():
    rng = np.random.default_rng(2)
    same = mia_loss_acc(rng.exponential(size=400), rng.exponential(size=400))
    assert abs(same - 0.5) < 0.06
    apart = mia_loss_acc(rng.uniform(0, 0.1, 400), rng.uniform(1, 2, 400))
    assert apart == 1.0
    assert indiscernibility(0.5) == 1.0 and indiscernibility(apart) == 0.0
    assert indiscernibility(0.75) == pytest.approx(0.5)
    assert indiscernibility(0.25) == pytest.approx(0.5)


def _lira_world(seed: int, target_shift: float, examples: int = 200):
    """Per-example OUT mean m_j and IN mean m_j + 3 (sd 1); targets at m_j + shift."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0, 5, size=examples)
    out = m + rng.normal(size=(12, examples))
    inside = m + 3 + rng.normal(size=(12, examples))
    targets = m + target_shift + rng.normal(size=(6, examples))
    return targets, out, inside


def test_lira_known_answers():
    # targets that are still members (IN-like): found; AUC of N(3,1) vs N(0,1) is 0.98
    members = lira_attack(*_lira_world(0, 3.0))
    assert members.auc > 0.93 and members.tpr_at_1pct_fpr > 0.4
    # targets that are truly unlearned (OUT-like): chance, TPR about equal to the FPR
    gone = lira_attack(*_lira_world(1, 0.0))
    assert abs(gone.auc - 0.5) < 0.05 and gone.tpr_at_1pct_fpr < 0.05
    assert gone.n_positive == 6 * 200 and gone.n_negative == 12 * 200


def test_lira_matches_carlini_code():
    targets, out, inside = _lira_world(2, 1.0)
    ours = membership_scores(targets, gaussian(inside), gaussian(out))
    np.testing.assert_allclose(ours, carlini_lira(inside, out, targets), rtol=1e-9, atol=1e-6)
    # the AUC: positives against all gold, each gold model against the others (held out)
    from sklearn.metrics import roc_auc_score

    negatives = [carlini_lira(inside, np.delete(out, k, 0), out[k : k + 1]) for k in range(12)]
    scores = np.concatenate([carlini_lira(inside, out, targets).ravel(), np.ravel(negatives)])
    labels = np.r_[np.ones(targets.size), np.zeros(out.size)]
    expected = roc_auc_score(labels, scores)
    assert lira_attack(targets, out, inside).auc == pytest.approx(expected, abs=1e-6)


def test_avg_gap_is_salun_mean_over_ua_ra_ta_and_mia_efficacy():
    per_seed = [
        {"forget_acc": 0.9, "retain_acc": 0.99, "test_acc": 0.9, "mia_efficacy": 0.1},
        {"forget_acc": 0.7, "retain_acc": 0.97, "test_acc": 0.8, "mia_efficacy": 0.3},
    ]
    gold = {"forget_acc": 0.85, "retain_acc": 1.0, "test_acc": 0.9, "mia_efficacy": 0.15}
    out = aggregate(per_seed, [1.0, 1.0], gold, 10.0)
    # means 0.8, 0.98, 0.85, 0.2; gaps 0.05 (UA's gap equals forget_acc's), 0.02, 0.05, 0.05
    assert out["avg_gap"] == pytest.approx((0.05 + 0.02 + 0.05 + 0.05) / 4)
    assert out["mia_efficacy_gap"] == pytest.approx(0.05)
