"""Calibration of forget quality on both digits scenarios with 16 seeds per method:
the `retrain` oracle scores F within noise of the ceiling (pooled gold against
independent gold at the same N, from the scenarios' 32 + 32 retrained models), and the
untouched original (`noop`) far below it on class forgetting; under the relearning
attack, `noop`'s forget accuracy comes back above `retrain`'s. Prints F, the ceiling and
the normalised value of every method run (`pytest -m slow -s tests/test_calibration.py`);
about 3 minutes on two cores."""

import pytest

from mu_bench.scenario import load
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan

SEEDS = 16
METHODS = ("retrain", "noop", "finetune", "gradient-ascent")


@pytest.fixture(scope="module")
def calibration():
    got = {}
    for scenario in ("digits-random10", "digits-class3"):
        shipped = load(scenario)  # 32 gold and 32 holdout models: a pool of 64
        for method in METHODS:
            report = run(plan(method, shipped, seeds=SEEDS), "cpu").report
            assert report.seeds_ok == SEEDS, report.seeds
            got[scenario, method] = report.metrics
    print(
        f"\n{'scenario':18} {'method':16} {'F':>6} {'ceiling':>8} {'norm':>6} {'score':>6} "
        f"{'avg_gap':>8} {'LiRA AUC':>9}"
    )
    for (scenario, method), m in got.items():
        print(
            f"{scenario:18} {method:16} {m['forget_quality']:6.3f} "
            f"{m['forget_quality_ceiling']:8.3f} {m['forget_quality_norm']:6.3f} "
            f"{m['score']:6.3f} {m['avg_gap']:8.4f} {m['lira_auc']:9.3f}"
        )
    return got


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["digits-random10", "digits-class3"])
def test_retrain_scores_forget_quality_near_the_ceiling(calibration, scenario):
    m = calibration[scenario, "retrain"]
    assert m["forget_quality_models"] == SEEDS
    assert m["forget_quality_norm"] >= 0.8, m


@pytest.mark.slow
def test_noop_scores_at_most_half_of_retrain_on_class_forgetting(calibration):
    retrain = calibration["digits-class3", "retrain"]["forget_quality"]
    assert calibration["digits-class3", "noop"]["forget_quality"] <= 0.5 * retrain


@pytest.mark.slow
def test_lira_tells_the_original_from_retraining(calibration):
    for scenario in ("digits-random10", "digits-class3"):
        retrain = calibration[scenario, "retrain"]["lira_auc"]
        assert abs(retrain - 0.5) < 0.1  # an exact unlearner is indistinguishable
        assert calibration[scenario, "noop"]["lira_auc"] > retrain + 0.1


@pytest.mark.slow
def test_noops_forgetting_comes_back_under_relearning_and_retrains_does_not(calibration):
    for scenario in ("digits-random10", "digits-class3"):
        noop = calibration[scenario, "noop"]["relearn_forget_acc"]
        assert noop > calibration[scenario, "retrain"]["relearn_forget_acc"]
    assert calibration["digits-class3", "retrain"]["relearn_forget_acc_gap"] < 0.1
