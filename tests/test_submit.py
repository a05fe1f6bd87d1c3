"""The spine end to end: built-in methods on both digits scenarios, the store, ranking,
and the calibration anchors (retrain near gold, noop far from it on class forgetting)."""

import json

import pytest

from mu_bench.leaderboard import ranking, store
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan

from .conftest import cli, cli_json

METHODS = ("noop", "finetune", "gradient-ascent", "retrain")


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    """Submit the four built-ins (2 seeds each) to both digits scenarios, in process."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    reports = {}
    for scenario in ("digits-random10", "digits-class3"):
        for method in METHODS:
            report = run(plan(method, scenario, seeds=2), "cpu").report
            reports[scenario, method] = store.record(report, uri)
    return uri, reports


@pytest.mark.slow
def test_every_submission_is_in_the_store_and_ranked(boards):
    uri, reports = boards
    assert ranking.scenarios(uri) == ["digits-class3", "digits-random10"]
    for scenario in ("digits-random10", "digits-class3"):
        table = ranking.table(ranking.load(uri, scenario))
        assert set(table["method"]) == set(METHODS)
        assert list(table["rank"]) == [1, 2, 3, 4]
        assert table["avg_gap"].is_monotonic_increasing
        for r in reports.values():
            assert r.status == "ok" and r.seeds_ok == 2


def test_reading_the_board_leaves_the_process_environment_alone(boards):
    """Workers and later submits inherit the environment: reading one store must not
    point them at it (the fluent MLflow API sets MLFLOW_TRACKING_URI)."""
    import os

    uri, _ = boards
    assert len(ranking.load(uri, "digits-class3")) == len(METHODS)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert ranking.load(uri, "no-such-scenario").empty


def test_class_forgetting_calibration(boards):
    _, reports = boards
    retrain = reports["digits-class3", "retrain"].metrics
    noop = reports["digits-class3", "noop"].metrics
    assert retrain["forget_acc"] <= 0.05
    assert noop["forget_acc"] >= 0.9
    gold = reports["digits-class3", "retrain"].reference["gold"]
    assert gold["forget_acc"] <= 0.05
    assert reports["digits-class3", "retrain"].reference["original"]["forget_acc"] >= 0.9


@pytest.mark.parametrize("scenario", ["digits-random10", "digits-class3"])
def test_retrain_has_the_smallest_gaps_to_gold(boards, scenario):
    _, reports = boards
    gaps = {m: reports[scenario, m].metrics["avg_gap"] for m in METHODS}
    # retrain is within noise of the best (fair-tuned finetune on digits-class3 is as
    # close: 0.0017 against retrain's 0.0019, both a fraction of a test example), and far
    # from noop and gradient ascent.
    assert gaps["retrain"] <= min(gaps.values()) + 0.005, gaps
    assert gaps["retrain"] < 0.5 * gaps["noop"], gaps


@pytest.mark.xfail(
    strict=True,
    reason="GA's fair-tuned preset (tuned on digit 4, batches below the forget set) leaves "
    "digit 3 remembered: forget acc 0.93 measured; GA is a cliff in the rate",
)
def test_gradient_ascent_forgets_class_3(boards):
    _, reports = boards
    ga = reports["digits-class3", "gradient-ascent"].metrics
    assert ga["forget_acc"] <= 0.1
    assert ga["retain_acc"] >= 0.6  # GA costs utility; SalUn reports the same


def test_costs_are_reported(boards):
    _, reports = boards
    m = reports["digits-random10", "retrain"].metrics
    assert m["unlearn_seconds"] > 0 and m["retrain_seconds"] > 0
    assert m["speedup"] == pytest.approx(m["retrain_seconds"] / m["unlearn_seconds"])


def test_cli_submit_json_document_and_leaderboard(home):
    doc = cli_json("submit", "finetune", "--seeds", "2", "--param", "epochs=2")
    assert doc["scenario"] == "digits-random10" and doc["method"] == "finetune"
    assert doc["status"] == "ok" and doc["run_id"]
    assert doc["params"]["epochs"] == 2 and doc["preset"] == "digits-random"  # fair-tuned
    for key in (
        "forget_acc",
        "retain_acc",
        "test_acc",
        "mia_loss_acc",
        "unlearn_seconds",
        "retrain_seconds",
        "speedup",
    ):
        assert key in doc["metrics"]
    assert [s["seed"] for s in doc["seeds"]] == [0, 1]
    assert {"seed", "status", "unlearn_seconds", "error"} <= set(doc["seeds"][0])
    assert (home / "mlflow.db").exists()
    c = store.client(store.default_uri())
    with open(c.download_artifacts(doc["run_id"], "report.json")) as fh:
        assert json.load(fh) == doc  # the stored report is the document --json printed
    board = cli_json("leaderboard")
    assert board["digits-random10"][0]["run_id"] == doc["run_id"]
    text = cli("leaderboard", "digits-random10", "--csv")
    assert text.returncode == 0 and text.stdout.splitlines()[0].startswith("rank,method")
    md = cli("leaderboard", "--markdown")
    assert "| finetune" in md.stdout


def test_store_records_params_tags_and_nested_seed_runs(boards):
    uri, reports = boards
    c = store.client(uri)
    r = reports["digits-random10", "finetune"]
    parent = c.get_run(r.run_id)
    assert parent.data.tags["mu_bench.method"] == "finetune"
    assert parent.data.tags["mu_bench.distribution"] == "mu-bench"
    assert parent.data.tags["mu_bench.scenario_hash"] == r.scenario_hash
    assert parent.data.tags["mu_bench.status"] == "ok"
    assert parent.data.params["lr"] == str(r.params["lr"])
    assert "budget_seconds" in parent.data.params
    children = c.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{r.run_id}'")
    assert sorted(ch.data.tags["mu_bench.seed"] for ch in children) == ["0", "1"]
    with open(c.download_artifacts(r.run_id, "report.json")) as fh:
        stored = json.load(fh)
    assert stored["method"] == "finetune" and stored["run_id"] == r.run_id
    assert stored == json.loads(json.dumps(r.to_json(), default=str))
