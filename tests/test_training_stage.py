"""The harness side of methods that change training (SISA): the training stage runs in a
worker, is cached per seed (and shared by scenarios with the same training set), a
failed stage is never cached and becomes the seed's status, the `ensemble` architecture
aggregates as documented, and method-reported numbers reach the report and leaderboard."""

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from mu_bench.api import Budget, ModelSpec, UnlearnTask, build_model
from mu_bench.cache import Cache
from mu_bench.cli.prepare import prepare as cli_prepare
from mu_bench.errors import UsageError
from mu_bench.isolation.executor import SerialExecutor
from mu_bench.leaderboard import ranking, render, store
from mu_bench.method import has_training_stage
from mu_bench.paths import cache_root
from mu_bench.registry import MethodEntry
from mu_bench.submission import training_stage
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import describe_method, plan
from mu_bench.submission.prepare import prepare

from .conftest import PLUGINS, cli


def test_only_methods_that_implement_train_have_a_stage():
    from mu_bench.methods.noop import NoOp
    from mu_bench.methods.sisa import SISA

    assert has_training_stage(SISA) and not has_training_stage(NoOp)
    # the harness learns it from the method's sandboxed inspection, as plain data
    assert plan("sisa", "digits-class3").method.has_training_stage
    for name in ("noop", "pbu", "scissorhands", "finetune"):
        assert not plan(name, "digits-class3").method.has_training_stage


def test_vote_counts_break_ties_to_the_lowest_class_and_weights_drop_members():
    from mu_bench.models.networks import Ensemble

    class Fixed(nn.Module):  # always predicts `label`
        def __init__(self, label):
            super().__init__()
            self.label = label
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), self.label), 4).float()

    ens = Ensemble([Fixed(2), Fixed(1), Fixed(2), Fixed(1)], 4, "vote").eval()
    out = ens(torch.zeros(3, 5))
    assert out.tolist() == [[0, 2, 2, 0]] * 3 and out.argmax(1).tolist() == [1, 1, 1]
    ens.member_weights[1] = 0.0  # drop one member voting 1: class 2 wins
    assert ens(torch.zeros(1, 5)).argmax(1).tolist() == [2]
    ens.member_weights[:] = 0.0
    assert ens(torch.zeros(2, 5)).tolist() == [[0.0] * 4] * 2


def test_softmax_mean_logits_are_the_log_of_the_mean_probability():
    from mu_bench.models.spec import ensemble_spec

    spec = ensemble_spec(ModelSpec("mlp", {"hidden": [8]}, (1, 8, 8), 10), 3, "softmax-mean")
    torch.manual_seed(0)
    ens = build_model(spec).eval()
    x = torch.rand(6, 1, 8, 8)
    mean = torch.stack([m(x).softmax(-1) for m in ens.members]).mean(0)
    assert torch.allclose(ens(x).exp(), mean, atol=1e-6)
    ens.member_weights[0] = 0.0
    mean = torch.stack([m(x).softmax(-1) for m in ens.members[1:]]).mean(0)
    assert torch.allclose(ens(x).exp(), mean, atol=1e-6)


def test_an_ensemble_spec_round_trips_and_rejects_nesting():
    from mu_bench.models.spec import ensemble_spec

    member = ModelSpec("mlp", {"hidden": [8]}, (1, 8, 8), 10)
    spec = ensemble_spec(member, 2)
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(ValueError, match="ensembles"):
        build_model(ensemble_spec(spec, 2))


def test_cache_entries_keep_and_check_files_in_sub_folders(tmp_path):
    cache = Cache(tmp_path)

    def build(tmp: Path) -> dict:
        (tmp / "state").mkdir()
        (tmp / "state" / "a.txt").write_text("a")
        return {}

    entry = cache.get_or_build("k", "key", build)
    assert "state/a.txt" in json.loads(entry.file("manifest.json").read_text())["files"]
    assert not cache.get_or_build("k", "key", build).built
    entry.file("state/a.txt").write_text("corrupted")
    assert cache.get_or_build("k", "key", build).built


def test_report_metric_checks_names_and_values():
    task = UnlearnTask(
        model=nn.Linear(1, 1),
        num_classes=2,
        seed=0,
        rng_seed=0,
        device=torch.device("cpu"),
        budget=Budget(1),
        recipe=None,
        model_spec=None,
        generator=torch.Generator(),
    )
    task.report_metric("shards_retrained", 3)
    assert task.reported == {"shards_retrained": 3.0}
    with pytest.raises(ValueError, match="must match"):
        task.report_metric("Bad Name", 1)
    with pytest.raises(ValueError, match="finite"):
        task.report_metric("x", float("nan"))


def _stage(sub, art, folder, cache=None):
    return training_stage.run_training_stage(
        sub, art, "cpu", range(1), SerialExecutor(), folder, cache=cache
    )[0]


@pytest.mark.slow
def test_stage_is_cached_per_seed_and_shared_by_scenarios_with_one_training_set(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mu_bench")
    cache = Cache(cache_root())
    sub = plan("sisa", "digits-class3", seeds=1, params={"epochs": "3"})
    art = prepare(sub.scenario, "cpu")
    first = _stage(sub, art, tmp_path / "a", cache)
    other = plan("sisa", "digits-random10", seeds=1, params={"epochs": "3", "aggregation": "vote"})
    again = _stage(other, prepare(other.scenario, "cpu"), tmp_path / "b", cache)
    assert isinstance(first, training_stage.TrainedMethod)
    assert again.cache_hit and again.weights == first.weights
    assert (first.state / "shards.pt").exists()
    # aggregation is not a training field: another aggregation reuses the stage
    mean = plan(
        "sisa", "digits-class3", seeds=1, params={"epochs": "3", "aggregation": "softmax-mean"}
    )
    reused = _stage(mean, art, tmp_path / "c", cache)
    assert reused.cache_hit and reused.weights == first.weights
    assert not torch.equal(reused.outputs.test, first.outputs.test)
    assert any("trained" in r.getMessage() for r in caplog.records)
    m = training_stage.trained_metrics(first, art)
    assert m["train_seconds"] > 0 and 0.5 < m["trained_test_acc"] <= 1
    kept = art.split.test_kept  # digit 3's test images are scored apart
    original = art.original.outputs.test[kept].argmax(1) == art.data.y_test[kept]
    assert m["trained_acc_drop"] == pytest.approx(
        original.double().mean().item() - m["trained_test_acc"]
    )


@pytest.mark.parametrize(
    ("attr", "status", "fragment"),
    [
        ("FailingTrainer", "error", "train(): RuntimeError: deliberate failure in train"),
        ("WrongArchTrainer", "invalid", "train(): returned model is not a 'mlp'"),
    ],
)
def test_a_failed_stage_is_the_seeds_status_and_is_not_cached(
    monkeypatch, tmp_path, attr, status, fragment
):
    monkeypatch.syspath_prepend(str(PLUGINS / "stages"))
    entry = MethodEntry(attr.lower(), f"mu_bench_stages:{attr}", "tests", "0")
    base = plan("noop", "digits-class3", seeds=1)
    sub = replace(base, entry=entry, method=describe_method(entry, base.scenario), params={})
    report = run(sub, "cpu").report
    seed = report.seeds[0]
    assert (seed.status, seed.unlearn_seconds) == (status, None)
    assert fragment in seed.error
    art = prepare(sub.scenario, "cpu")
    key = training_stage.stage_key(sub, art, 0, "cpu")
    assert Cache(cache_root()).get("method-train", key) is None


def test_cli_prepare_runs_the_stage_and_says_when_it_is_cached(tmp_path):
    sub = plan("sisa", "digits-class3", seeds=1, params={"epochs": "2"})
    _stage(sub, prepare(sub.scenario, "cpu"), tmp_path)
    proc = cli(
        "prepare", "digits-class3", "--method", "sisa", "-n", "1", "-p", "epochs=2", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert "training stage, seed 0: cached" in proc.stderr
    (row,) = json.loads(proc.stdout)["method_training"]
    assert row["status"] == "ok" and row["cache_hit"] and row["train_seconds"] > 0
    with pytest.raises(UsageError, match="no training stage"):
        cli_prepare("digits-class3", method="pbu")


def test_stage_numbers_reach_the_report_store_and_leaderboard(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sisa = run(plan("sisa", "digits-class3", seeds=2, params={"epochs": "3"}), "cpu").report
    noop = run(plan("noop", "digits-class3", seeds=1), "cpu").report
    for r in (sisa, noop):
        store.record(r, uri)
    m = sisa.metrics
    for key in ("train_seconds", "trained_acc_drop", "method.shards_retrained"):
        assert key in m and f"{key}_std" in m
    assert m["method.shards_retrained"] == 5  # digit 3 is in every shard
    assert "method.shards_retrained" in sisa.seeds[0].metrics
    board = ranking.table(ranking.load(uri, "digits-class3"))
    rows = {r["method"]: r for r in render.board_rows(board, wide=True).rows}
    assert rows["sisa"]["shards retrained"].startswith("5.00")
    assert rows["noop"]["shards retrained"] == "-" and rows["noop"]["train s"] == "-"
    assert "acc lost (train)" in rows["sisa"]
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render.report_table(sisa))
    text = console.export_text()
    assert "trained_acc_drop" in text and "method.shards_retrained" in text
    # a board with no training-stage submission keeps its usual columns
    only_noop = render.board_rows(board[board["method"] == "noop"], wide=True).rows
    assert "train s" not in only_noop[0]
