"""Submission-level scoring end to end: one forward pass per model, forget quality and
its ceiling from the prepared models, LiRA, figures in the store, the ranking by score
and the Pareto plot."""

import itertools
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

import mu_bench.submission.evaluate as evaluate_stage
import mu_bench.submission.prepare as prepare_stage
from mu_bench.cache import Cache
from mu_bench.errors import UsageError
from mu_bench.evaluation import scoring
from mu_bench.evaluation.ceiling import pooled_ceiling
from mu_bench.evaluation.metrics.forget_quality import forget_quality
from mu_bench.leaderboard import ranking, store
from mu_bench.leaderboard.figures import pareto_front
from mu_bench.scenario import load, parse
from mu_bench.seeding import derive_seed
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan
from mu_bench.submission.prepare import prepare

from .conftest import cli_json

SCENARIO = "digits-random10"


@pytest.fixture(scope="module")
def art(shared_cache):
    return prepare(load(SCENARIO), "cpu", cache=Cache(shared_cache))


def test_each_unlearned_model_gets_exactly_one_forward_pass(monkeypatch, art):
    """Counted twice: rows through `predict_logits`, and examples through the model's
    own forward (a hook), while the whole submission is evaluated."""
    rows: Counter = Counter()
    examples: Counter = Counter()
    loaded = itertools.count()
    real_infer, real_load = evaluate_stage.infer, evaluate_stage.returned_model

    def counting_infer(model, data):
        rows[model.mu_bench_test_id] += len(data.x_train) + len(data.x_test)
        return real_infer(model, data)

    def hooked_load(*args, **kwargs):
        model = real_load(*args, **kwargs)
        model.mu_bench_test_id = next(loaded)
        model.register_forward_hook(
            lambda m, inputs, _: examples.update({m.mu_bench_test_id: len(inputs[0])})
        )
        return model

    monkeypatch.setattr(evaluate_stage, "infer", counting_infer)
    monkeypatch.setattr(evaluate_stage, "returned_model", hooked_load)
    report = run(plan("finetune", SCENARIO, seeds=3), "cpu").report
    assert report.status == "ok" and "forget_quality" in report.metrics
    assert "lira_auc" in report.metrics and "forget_quality_ceiling" in report.metrics
    per_model = len(art.data.y_train) + len(art.data.y_test)
    assert examples == {0: per_model, 1: per_model, 2: per_model}
    assert rows == examples


def test_prepare_passes_once_per_model_and_trains_only_new_models(monkeypatch, tmp_path):
    calls: list[tuple[int, int]] = []  # (model, rows) per call, in order
    real = prepare_stage.infer

    def counting(model, data):
        calls.append((id(model), len(data.x_train)))
        calls.append((id(model), len(data.x_test)))
        return real(model, data)

    monkeypatch.setattr(prepare_stage, "infer", counting)
    base = load(SCENARIO)  # a 2-epoch recipe: the counts, not the models, matter here
    scenario = base.model_copy(update={"train": base.train.model_copy(update={"epochs": 2})})
    cache = Cache(tmp_path)
    first = prepare(scenario, "cpu", gold_seeds=2, ceiling=True, in_models=2, cache=cache)
    models = (first.original, *first.gold, *first.gold_holdout, *first.in_models)
    roles = ["original", "gold", "gold", "gold-holdout", "gold-holdout", "in", "in"]
    assert [m.role for m in models] == roles
    # one pass per trained model: its training set rows, then its test set rows
    sizes = (len(first.data.y_train), len(first.data.y_test))
    assert [rows for _, rows in calls] == list(sizes) * 7
    assert all(calls[i][0] == calls[i + 1][0] for i in range(0, 14, 2))
    calls.clear()
    more = prepare(scenario, "cpu", gold_seeds=2, ceiling=True, in_models=3, cache=cache)
    assert [m.cache_hit for m in more.in_models] == [True, True, False]
    assert all(m.cache_hit for m in (more.original, *more.gold, *more.gold_holdout))
    assert [rows for _, rows in calls] == list(sizes)  # only the new IN model ran
    # the holdout set is its own draw, and IN models are replicas of the original's
    for h in first.gold_holdout:
        assert not any(torch.equal(h.outputs.train, g.outputs.train) for g in first.gold)
    for m in first.in_models:
        assert not torch.equal(m.outputs.train, first.original.outputs.train)
    assert first.in_models[0].key != first.original.key


def test_retrain_never_reproduces_a_gold_model(art):
    evaluation = run(plan("retrain", SCENARIO, seeds=2), "cpu")
    report, outputs = evaluation.report, evaluation.outputs
    assert report.seeds_ok == 2
    for out in outputs.values():
        for g in (*art.gold, *art.gold_holdout):
            assert not torch.equal(out.train, g.outputs.train)
    submission = {derive_seed(art.scenario.seed, "submission", i) for i in range(64)}
    gold = {
        derive_seed(art.scenario.seed, s, k) for s in ("gold", "gold-holdout") for k in range(64)
    }
    assert submission.isdisjoint(gold)
    assert report.metrics["forget_acc_gap"] < 0.03  # still a draw from gold's distribution


def test_one_seed_reports_everything_but_forget_quality(art):
    report = run(plan("finetune", SCENARIO, seeds=1), "cpu").report
    m = report.metrics
    assert "forget_quality" not in m and "score" not in m
    assert any("no forget_quality" in note and "--seeds 2" in note for note in report.notes)
    for key in ("forget_acc", "mia_efficacy", "indiscernibility", "avg_gap", "lira_auc"):
        assert key in m


def test_a_method_that_ignores_its_seed_is_a_point_mass_with_f_zero(art):
    evaluation = run(plan("noop", SCENARIO, seeds=3), "cpu")
    report, outputs = evaluation.report, evaluation.outputs
    assert torch.equal(outputs[0].train, outputs[2].train)  # the same model three times
    m = report.metrics
    assert m["forget_quality"] == 0.0 and m["score"] == 0.0
    assert m["forget_quality_ceiling"] > 0
    assert any("coarse" in note for note in report.notes)  # N = 3 is small
    confs = scoring.forget_confidences((outputs[s] for s in sorted(outputs)), art.data, art.split)
    per_seed = [s.metrics for s in report.seeds]
    fq = scoring.submission_metrics(confs, per_seed, art.reference).forget_quality
    assert np.all(fq.epsilons == 50.0)
    # the original model is still a member of its forget set: LiRA sees it
    assert m["lira_auc"] > 0.6


def test_ceiling_is_pooled_gold_against_independent_gold_at_the_same_n(art, shared_cache):
    """The mean F of 20 disjoint pairs of 8-model sets drawn from all 64 retrained models,
    and the spread of one draw."""
    ceiling, spread = art.reference.ceilings[8], art.reference.ceiling_spreads[8]
    holdout = scoring.forget_confidences((g.outputs for g in art.gold_holdout), *_sets(art))
    gold = scoring.forget_confidences((g.outputs for g in art.gold), *_sets(art))
    assert len(gold) == len(holdout) == 32  # the digits default: 32 per side
    expected = pooled_ceiling(np.concatenate([gold, holdout]), 8, pairs=20)
    assert (ceiling, spread) == (expected.mean, expected.std)
    one_draw = forget_quality(holdout[:8], gold[:8]).value
    assert abs(one_draw - ceiling) < 4 * spread  # one draw is one of the pairs' kind
    assert 0.1 < ceiling < 0.6  # the small-N bias: far below 1 even for gold itself
    again = prepare(load(SCENARIO), "cpu", cache=Cache(shared_cache))
    assert again.reference.ceilings[8] == ceiling  # cached


def _sets(art):
    return art.data, art.split


def test_cli_logs_figures_and_ranks_by_score(home, tmp_path):
    from typer.testing import CliRunner

    from mu_bench.cli.main import app

    uri = store.default_uri()
    noop = run(plan("noop", SCENARIO, seeds=3), "cpu").report
    store.record(noop, uri)
    doc = cli_json("submit", "finetune", "-n", "3", "--param", "epochs=2")  # draws figures
    for key in ("forget_quality", "forget_quality_ceiling", "score", "mia_efficacy", "lira_auc"):
        assert key in doc["metrics"]
    names = {f.path for f in store.client(uri).list_artifacts(doc["run_id"], "figures")}
    assert names == {"figures/histograms.png", "figures/mia_roc.png", "figures/accuracy_seeds.png"}

    runner = CliRunner()
    result = runner.invoke(app, ["leaderboard", SCENARIO, "--json"])
    board = json.loads(result.stdout)[SCENARIO]
    assert [r["method"] for r in board] == ["finetune", "noop"]  # noop's F is 0
    assert board[0]["score_norm"] > 0 and board[1]["score"] == 0.0
    for key in ("forget_quality_ceiling", "forget_quality_norm", "lira_auc", "mia_efficacy"):
        assert key in board[0]
    plot = tmp_path / "board.png"
    result = runner.invoke(app, ["leaderboard", SCENARIO, "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "F/ceil" in runner.invoke(app, ["leaderboard", "--markdown"]).stdout
    assert "F norm" in runner.invoke(app, ["leaderboard", "--markdown", "--wide"]).stdout
    bad = runner.invoke(app, ["leaderboard", SCENARIO, "--plot", str(tmp_path / "board.txt")])
    assert isinstance(bad.exception, UsageError) and ".png" in str(bad.exception)


def test_ranking_prefers_score_then_avg_gap_then_failures():
    runs = pd.DataFrame(
        {
            "tags.mu_bench.method": ["a", "b", "c", "d", "e"],
            "tags.mu_bench.status": ["ok", "ok", "ok", "ok", "error"],
            "tags.mu_bench.seeds_ok": ["8/8", "8/8", "1/1", "8/8", "0/1"],
            "tags.mu_bench.in_scope": ["true"] * 5,
            "tags.mu_bench.version": ["1"] * 5,
            "tags.mu_bench.params": ["{}", "{}", "{}", "{}", "{}"],
            "metrics.score_norm": [0.5, 0.9, None, 0.5, None],
            "metrics.avg_gap": [0.02, 0.05, 0.01, 0.01, None],
            "run_id": list("12345"),
            "start_time": pd.to_datetime(range(5), unit="s"),
        }
    )
    t = ranking.table(runs)
    assert list(t["method"]) == ["b", "d", "a", "c", "e"]  # ties on score: smaller gap first
    assert t["rank"].tolist()[:4] == [1, 2, 3, 4] and pd.isna(t["rank"].iloc[4])
    assert ranking.rank_metric(t) == "score_norm"


def test_pareto_front():
    x = np.array([1.0, 2.0, 3.0, 0.5, 3.0])
    y = np.array([0.5, 0.4, 0.9, 0.1, 0.2])
    assert pareto_front(x, y, maximize=True).tolist() == [3, 0, 2]
    assert pareto_front(x, y, maximize=False).tolist() == [3]


def test_scenario_keys_for_the_ceiling_and_lira_are_validated():
    text = load("digits-random10").model_dump(mode="json")
    base = (
        'name = "t"\nsummary = "t"\n[data]\ndataset = "digits"\n[forget]\nrule = "random"\n'
        'fraction = 0.1\n[model]\narch = "mlp"\n[train]\nlr = 0.001\nepochs = 1\n'
        "batch_size = 64\n[budget]\nseconds = 5\n"
    )
    assert text["lira"]["in_models"] == 32 and text["gold"]["ceiling"] is True
    assert text["gold"]["seeds"] == 32 and text["relearn"]["steps"] == 10
    assert parse(base, "t").relearn.steps == 0  # the relearning attack: off by default
    with pytest.raises(UsageError, match="slice_fraction"):
        parse(base + "[relearn]\nsteps = 10\nslice_fraction = 0.5\n", "t")
    assert parse(base, "t").lira.in_models == 0  # off by default
    with pytest.raises(UsageError, match="in_models = 1"):
        parse(base + "[lira]\nin_models = 1\n", "t")
    with pytest.raises(UsageError, match="seeds >= 3"):
        parse(base + "[gold]\nseeds = 2\n[lira]\nin_models = 4\n", "t")
    with pytest.raises(UsageError, match="allowed: in_models, fix_variance"):
        parse(base + "[lira]\nshadows = 4\n", "t")
