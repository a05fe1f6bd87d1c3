"""Relearning and KLOM in every report: known answers for KLOM's submission metrics
(identical margins give 0, a side that is all at the pooled maximum is undefined and
noted, the floor is holdout gold against gold), the gold models attacked with the same
steps at prepare time, and on digits-class3 `noop`'s forget accuracy comes back after
relearning while `retrain`'s stays with the gold models'."""

import numpy as np
import pytest

from mu_bench.cache import Cache
from mu_bench.evaluation import scoring
from mu_bench.evaluation.catalogue import BOARD, CATALOGUE
from mu_bench.scenario import load
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan
from mu_bench.submission.prepare import prepare

SEEDS = 3


def _reference(gold: np.ndarray, holdout: np.ndarray) -> scoring.Reference:
    empty = np.zeros((0, gold.shape[1]))
    return scoring.Reference(
        original={},
        gold=({},),
        gold_confs=empty,
        holdout_confs=empty,
        in_confs=empty,
        gold_margins=gold,
        holdout_margins=holdout,
    )


def test_klom_of_the_gold_margins_themselves_is_zero_and_the_floor_is_holdouts():
    rng = np.random.default_rng(0)
    gold = rng.normal(size=(8, 30))
    holdout = gold + 50.0  # disjoint from gold on every example: the eps cap
    values, notes = scoring.klom_metrics(gold.copy(), _reference(gold, holdout))
    assert values["klom"] == 0.0 and values["klom_undefined"] == 0 and not notes
    assert values["klom_floor"] == pytest.approx(np.log(1 / 1e-5))


def test_klom_counts_and_notes_undefined_examples():
    rng = np.random.default_rng(1)
    gold = rng.normal(size=(4, 10))
    unlearned = rng.normal(size=(4, 10))
    unlearned[:, :3] = 99.0  # one model four times, above every gold margin: NaN there
    values, notes = scoring.klom_metrics(unlearned, _reference(gold, gold[:0]))
    assert values["klom_undefined"] == 3
    assert np.isfinite(values["klom"])
    assert "klom_floor" not in values  # no holdout gold models
    assert any("undefined on 3 of 10" in n for n in notes)


def test_f_undefined_when_both_sides_are_one_point_mass_is_noted_not_one():
    same = np.full((3, 5), 103.6)
    ref = scoring.Reference(
        original={},
        gold=tuple({"retain_acc": 1.0, "test_acc": 1.0} for _ in range(3)),
        gold_confs=same.copy(),
        holdout_confs=same.copy(),
        in_confs=np.zeros((0, 5)),
    )
    per_seed = [{"retain_acc": 1.0, "test_acc": 1.0}] * 3
    got = scoring.submission_metrics(same, per_seed, ref)
    assert "forget_quality" not in got.metrics and "score" not in got.metrics
    assert got.metrics["forget_quality_models"] == 3
    assert any("forget_quality undefined" in n and "not reported as 1.0" in n for n in got.notes)


def test_the_new_metrics_are_catalogued_and_on_the_board():
    for name in ("klom", "klom_floor", "klom_undefined", "relearn_forget_acc"):
        assert name in CATALOGUE and name in BOARD
    assert CATALOGUE["relearn_forget_acc"].level == "model"


@pytest.fixture(scope="module")
def reports(shared_cache):
    shipped = load("digits-class3")  # 8 gold, 8 holdout and 8 IN models are enough here
    small = shipped.model_copy(
        update={
            "gold": shipped.gold.model_copy(update={"seeds": 8}),
            "lira": shipped.lira.model_copy(update={"in_models": 8}),
        }
    )
    prepare(small, "cpu", cache=Cache(shared_cache))
    return {m: run(plan(m, small, seeds=SEEDS), "cpu").report for m in ("noop", "retrain")}


def test_every_report_has_relearning_and_klom_against_gold(reports):
    for report in reports.values():
        m, gold = report.metrics, report.reference["gold"]
        for name in ("relearn_forget_acc", "relearn_retain_only_acc", "klom", "klom_floor"):
            assert name in m, name
        assert "relearn_forget_acc" in gold and "relearn_forget_acc_gap" in m
        assert m["relearn_forget_acc_gap"] == pytest.approx(
            abs(m["relearn_forget_acc"] - gold["relearn_forget_acc"])
        )
        assert report.timings["relearn_seconds"] > 0


def test_noops_forgetting_comes_back_and_retrains_does_not(reports):
    noop, retrain = reports["noop"].metrics, reports["retrain"].metrics
    gold = reports["retrain"].reference["gold"]
    # the original still knows digit 3; retraining never saw it
    assert noop["relearn_forget_acc"] > retrain["relearn_forget_acc"] + 0.5
    assert noop["relearn_retain_only_acc"] > retrain["relearn_retain_only_acc"] + 0.5
    assert retrain["relearn_forget_acc_gap"] < 0.1 and gold["relearn_forget_acc"] < 0.2
    # noop is one model three times, above gold's margins: KLOM far above its floor
    assert noop["klom_undefined"] > 0 or noop["klom"] > noop["klom_floor"]
    assert retrain["klom_undefined"] == 0


def test_a_voting_ensemble_is_attacked_through_its_mean_probability():
    """SISA's vote predicts, but the MIAs and confidences read the members' mean softmax
    probability (a probability like a single model's), not softmax(vote counts)."""
    import torch
    from torch import nn

    from mu_bench.data.dataset import Dataset
    from mu_bench.data.forget import ForgetSplit
    from mu_bench.evaluation.inference import infer
    from mu_bench.evaluation.metrics.confidence import logit_scaled_confidence
    from mu_bench.models.networks import Ensemble

    class Fixed(nn.Module):  # the same logits for every input
        def __init__(self, logits):
            super().__init__()
            self.logits = nn.Parameter(torch.tensor(logits))

        def forward(self, x):
            return self.logits.expand(len(x), -1)

    members = [Fixed([2.0, 0.0, 0.0]), Fixed([0.0, 1.0, 0.0]), Fixed([3.0, 0.0, 1.0])]
    vote = Ensemble(members, 3, "vote").eval()
    x = torch.zeros(4, 2)
    data = Dataset(x, torch.zeros(4, dtype=torch.long), x[:2], torch.zeros(2, dtype=torch.long), 3)
    out = infer(vote, data)
    assert out.train[0].tolist() == [2.0, 1.0, 0.0]  # the votes still predict
    mean_p = torch.stack([m.logits.detach().softmax(0) for m in members]).mean(0)
    torch.testing.assert_close(out.scores_train[0].exp(), mean_p)
    idx = torch.tensor
    split = ForgetSplit(idx([0, 1]), idx([2, 3]), idx([0, 1]), idx([], dtype=torch.long))
    conf = scoring.forget_confidences([out], data, split)
    p0 = float(mean_p[0])
    np.testing.assert_allclose(conf[0], np.log(p0 / (1 - p0)), rtol=1e-5)
    assert not np.allclose(conf[0], logit_scaled_confidence(out.train[:2], data.y_train[:2]))
    single = infer(members[0], data)  # a single model: the attacks read its logits
    assert single.attack_train is None and single.scores_train is single.train
