"""Families of forget sets (`[family]`, `submission.family`): the section's validation,
the aggregate's arithmetic on a hand-made case, each member prepared and cached on its
own, a submit's per-set and aggregate metrics in `--json` and the store, the board, and
(slow) the calibration of the built-in digits families."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from mu_bench.cache import Cache
from mu_bench.errors import UsageError
from mu_bench.evaluation.catalogue import CATALOGUE, FAMILY_SPREAD, group_of, stored
from mu_bench.scenario import load, parse
from mu_bench.submission.family import aggregate_sets, members, prepare_family

from .conftest import cli_json

# A tiny class family: digits 3, 4 and 5 (draws 0..2 of class 3), 600 images, a small
# MLP, 2 gold and 2 holdout models per set, 2 seeds (forget quality needs 2 a side).
TINY = """
name = "tiny-family"
summary = "test family"
seed = 0

[data]
dataset = "digits"
test_fraction = 0.2

[data.options]
examples = 600

[forget]
rule = "class"
classes = [3]

[family]
draws = 3

[model]
arch = "mlp"
hidden = [32]

[train]
optimizer = "adam"
lr = 1e-2
epochs = 5
batch_size = 64

[gold]
seeds = 2
ceiling = true

[budget]
seconds = 10

[submit]
seeds = 2
"""


def tiny(tmp_path: Path, text: str = TINY, name: str = "tiny-family.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_family_sections_are_validated():
    with pytest.raises(UsageError, match="draws = 1: give a count from 2"):
        parse(TINY.replace("draws = 3", "draws = 1"), "x")
    with pytest.raises(UsageError, match="at least two distinct draw numbers"):
        parse(TINY.replace("draws = 3", "draws = [0, 2, 2]"), "x")
    # Digits has ten classes: one class a set gives draws 0..9.
    with pytest.raises(UsageError, match=r"forget draw 10 .* the draws are 0\.\.9"):
        parse(TINY.replace("draws = 3", "draws = [0, 10]"), "x")
    with pytest.raises(UsageError, match=r"the draws are 0\.\.4"):  # two classes a set
        parse(
            TINY.replace("classes = [3]", "classes = [3, 7]").replace("= 3\n\n[m", "= 6\n\n[m"), "x"
        )
    random = TINY.replace('rule = "class"\nclasses = [3]', 'rule = "random"\nfraction = 0.25')
    with pytest.raises(UsageError, match="largest draw is 3"):
        parse(random.replace("draws = 3", "draws = 5"), "x")
    with pytest.raises(UsageError, match=r"\[family\] and \[stream\] exclude each other"):
        parse(TINY + "\n[stream]\nrequests = 2\n", "x")
    with pytest.raises(UsageError, match="leave forget.draw out"):
        parse(TINY.replace("classes = [3]", "classes = [3]\ndraw = 1"), "x")
    with pytest.raises(UsageError, match="unknown key 'family.size'"):
        parse(TINY.replace("draws = 3", "draws = 3\nsize = 2"), "x")
    ok = parse(random.replace("draws = 3", "draws = [0, 2, 3]"), "x")
    assert ok.family.members == (0, 2, 3)
    assert [m.forget.draw for m in members(ok)] == [0, 2, 3]
    assert [m.family for m in members(ok)] == [None] * 3


def test_builtin_families_keep_the_single_scenarios_hashes_and_sets():
    single, family = load("digits-class3"), load("digits-class-all")
    assert family.family.members == tuple(range(10))
    first = members(family)[0]
    # Draw 0 is digits-class3's forget set: the same forget section, so the same cache keys.
    assert first.forget == single.forget
    assert first.section_hash("data", "forget", "model", "train") == single.section_hash(
        "data", "forget", "model", "train"
    )
    random = load("digits-random10-family")
    assert 1 not in random.family.members  # fair tuning's draw is left out
    assert members(random)[0].forget == load("digits-random10").forget
    assert single.family is None and single.content_hash != family.content_hash


def test_aggregate_is_the_mean_and_spread_of_the_sets():
    per_set = [
        {"forget_quality_norm": 1.0, "forget_acc": 0.0, "only_here": 5.0},
        {"forget_quality_norm": 0.5, "forget_acc": 0.2},
        {"forget_quality_norm": 0.9, "forget_acc": 0.1},
    ]
    got = aggregate_sets(per_set)
    assert got["forget_quality_norm"] == pytest.approx(0.8)
    assert got["forget_acc"] == pytest.approx(0.1)
    assert "only_here" not in got  # only what every set has
    assert got["family_sets"] == 3
    # Sample std (ddof 1, as over seeds): deviations 0.2, -0.3, 0.1 -> sqrt(0.14 / 2).
    assert got["family.forget_quality_norm_std"] == pytest.approx(0.14**0.5 / 2**0.5)
    assert got["family.forget_quality_norm_min"] == 0.5
    assert got["family.forget_quality_norm_max"] == 1.0
    assert got["family.forget_acc_std"] == pytest.approx(0.1)
    for k in got:  # every name the family adds is in the catalogue, in its section
        if k.startswith("family"):
            assert k in CATALOGUE and group_of(k) == "family"
    assert stored("set.forget_acc") == "9_family/set.forget_acc"
    assert all(f"family.{m}_std" in CATALOGUE for m in FAMILY_SPREAD)


def test_each_forget_set_is_prepared_and_cached_on_its_own(tmp_path):
    # Two sets, no ceiling: the fewest models that show it (about 1 s a model here).
    text = TINY.replace("draws = 3", "draws = [0, 4]").replace("ceiling = true", "")
    scenario = parse(text, "tiny")
    cache = Cache(tmp_path / "cache")
    first = prepare_family(scenario, "cpu", cache=cache)
    assert [p.draw for p in first] == [0, 4]
    assert [sorted(set(p.art.data.y_train[p.art.split.forget_idx].tolist())) for p in first] == [
        [3],
        [7],
    ]
    gold_keys = [{m.key for m in p.art.gold} for p in first]
    assert all(len(k) == 2 for k in gold_keys) and not gold_keys[0] & gold_keys[1]
    # The original does not depend on the forget set: trained once, shared by the members.
    assert not first[0].art.original.cache_hit and first[1].art.original.cache_hit
    assert not any(m.cache_hit for p in first for m in p.art.gold)
    again = prepare_family(scenario, "cpu", cache=cache)
    assert all(m.cache_hit for p in again for m in p.art.models)


def test_bad_families_stop_before_anything_is_written(tmp_path, home, run_cli):
    text = TINY.replace('rule = "class"\nclasses = [3]', 'rule = "random"\ncount = 200')
    bad = parse(text.replace("draws = 3", "draws = [0, 5]"), "bad")
    cache = Cache(tmp_path / "cache")
    with pytest.raises(UsageError, match="forget draw 5 of 200 examples is impossible"):
        prepare_family(bad, "cpu", cache=cache)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    path = tiny(tmp_path, TINY.replace("draws = 3", "draws = 1"), "bad.toml")
    code, _, err = run_cli("submit", "noop", "-s", str(path))
    assert code == 2 and "draws = 1: give a count from 2 to 1000" in err
    assert not (home / "mlflow.db").exists()


def test_a_family_report_lands_in_the_store_the_board_and_the_summary(tmp_path):
    """The store's side, from a hand-made family report (the submit is the slow test
    below): per-set metrics as `set.<name>` at step = draw, seeds tagged with their set,
    the run named by sets and seeds, the board ranking it by the mean."""
    from rich.console import Console

    from mu_bench.leaderboard import ranking, render, store
    from mu_bench.submission.report import SeedReport

    from .test_idempotency import report as hand_made_report

    per = [{"forget_acc": 0.1, "test_acc": 0.9, "avg_gap": 0.2, "score_norm": 0.5}]
    per.append({"forget_acc": 0.3, "test_acc": 0.8, "avg_gap": 0.4, "score_norm": 0.7})
    sets = tuple(
        {"set": i, "draw": d, "forget": f"class [{c}]", "classes": [c], "size": 130,
         "status": "ok", "seeds_ok": "2/2", "tuning_draw": d == 1, "metrics": m}
        for i, (d, c, m) in enumerate(zip((0, 1), (3, 4), per, strict=True))
    )  # fmt: skip
    seeds = tuple(SeedReport(s, "ok", 0.1, 0.2, forget_set=d) for d in (0, 1) for s in (0, 1))
    seeds = (*seeds[:3], SeedReport(1, "error", error="RuntimeError: boom", forget_set=1))
    report = replace(
        hand_made_report("noop", "tiny-family"),
        scenario_hash="f" * 64,
        reads="both",
        seeds=seeds,
        metrics=aggregate_sets(per),
        reference={"gold": {"forget_acc": 0.0}, "original": {"forget_acc": 1.0}},
        sandbox="landlock",
        forget_sets=sets,
    )
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    got = store.record(report, uri)
    c = store.client(uri)
    history = c.get_metric_history(got.run_id, stored("set.forget_acc"))
    assert sorted((h.step, h.value) for h in history) == [(0, 0.1), (1, 0.3)]
    run = c.get_run(got.run_id)
    assert run.data.tags["mlflow.runName"] == "noop · 2 sets x 2 seeds"
    assert run.data.metrics[stored("forget_acc")] == pytest.approx(0.2)
    assert run.data.metrics["9_family/family.forget_acc_max"] == pytest.approx(0.3)
    children = c.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{got.run_id}'"
    )
    names = sorted(r.info.run_name for r in children)
    assert names == [f"noop · draw {d} · seed {s}" for d in (0, 1) for s in (0, 1)]
    assert sorted(r.data.tags["mu_bench.forget_set"] for r in children) == ["0", "0", "1", "1"]
    board = ranking.table(ranking.load(uri, "tiny-family"))
    assert board.loc[0, "rank"] == 1 and board.loc[0, "score_norm"] == pytest.approx(0.6)
    assert board.loc[0, "family_sets"] == 2
    console = Console(width=120, record=True)
    console.print(render.report_table(got))
    text = console.export_text()
    assert "class [4] (tuning)" in text and "per forget set" in text
    assert "1 (draw 1)" in text and "3/4 seeds ok" in text  # a failed seed names its set


@pytest.mark.slow
def test_submit_on_a_family_reports_and_stores_every_set(tmp_path, run_cli):
    """End to end (43 s on the loaded 2-core machine, beside test_streams' equivalent
    at 61 s): each set prepared and cached on its own, so the submit trains nothing."""
    from mu_bench.leaderboard import store

    path = tiny(tmp_path, TINY.replace("draws = 3", "draws = [0, 2]"))
    prepared = prepare_family(parse(path.read_text(), "tiny"), "cpu")  # the shared cache
    assert [p.draw for p in prepared] == [0, 2]
    doc = cli_json("submit", "noop", "-s", str(path), "--no-figures")
    sets = doc["forget_sets"]
    assert [s["draw"] for s in sets] == [0, 2] and [s["classes"] for s in sets] == [[3], [5]]
    # Each set was prepared by `prepare` above: the submit trained nothing.
    assert all(s["cache_hits"] == s["models"] for s in sets)
    assert doc["status"] == "ok" and len(doc["seeds"]) == 4
    assert sorted((s["forget_set"], s["seed"]) for s in doc["seeds"]) == [
        (0, 0),
        (0, 1),
        (2, 0),
        (2, 1),
    ]
    per = [s["metrics"] for s in sets]
    for name in ("forget_acc", "test_acc", "avg_gap"):
        assert doc["metrics"][name] == pytest.approx((per[0][name] + per[1][name]) / 2)
    lo, hi = sorted(p["forget_acc"] for p in per)
    assert doc["metrics"]["family.forget_acc_min"] == pytest.approx(lo)
    assert doc["metrics"]["family.forget_acc_max"] == pytest.approx(hi)
    assert doc["metrics"]["family.forget_acc_std"] == pytest.approx((hi - lo) / 2**0.5)
    assert doc["metrics"]["family_sets"] == 2
    c = store.client(store.resolve_uri(None))
    history = c.get_metric_history(doc["run_id"], stored("set.forget_acc"))
    assert sorted((h.step, h.value) for h in history) == [
        (0, pytest.approx(per[0]["forget_acc"])),
        (2, pytest.approx(per[1]["forget_acc"])),
    ]
    run = c.get_run(doc["run_id"])
    assert run.data.tags["mlflow.runName"] == "noop · 2 sets x 2 seeds"
    assert run.data.metrics[stored("forget_acc")] == pytest.approx(doc["metrics"]["forget_acc"])
    children = c.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{doc['run_id']}'"
    )
    assert sorted(r.data.tags["mu_bench.forget_set"] for r in children) == ["0", "0", "2", "2"]
    code, out, _ = run_cli("leaderboard", "tiny-family", "--json")
    assert code == 0
    board = json.loads(out)
    row = board["tiny-family"][0] if isinstance(board, dict) else board[0]
    assert row["method"] == "noop" and row["rank"] == 1 and row["family_sets"] == 2
    assert row["forget_acc"] == pytest.approx(doc["metrics"]["forget_acc"])


@pytest.mark.slow
@pytest.mark.timeout(2400)  # a cold digits-class-all prepare alone took 440 s, loaded
@pytest.mark.parametrize("scenario", ["digits-class-all", "digits-random10-family"])
def test_retrain_is_at_the_ceiling_and_noop_far_below_on_every_set(scenario):
    """Calibration on the built-in families. Measured (8 seeds a set; README): retrain's
    F norm averaged 1.005 over the ten classes (0.871 to 1.108 per set) and 1.002 over
    the five random draws (0.970 to 1.030); noop's was 0 on every set of both."""
    docs = {m: cli_json("submit", m, "-s", scenario, "--no-figures") for m in ("retrain", "noop")}
    retrain, noop = docs["retrain"]["metrics"], docs["noop"]["metrics"]
    assert 0.85 <= retrain["forget_quality_norm"] <= 1.15, retrain["forget_quality_norm"]
    assert noop["forget_quality_norm"] <= 0.1
    for r, n in zip(docs["retrain"]["forget_sets"], docs["noop"]["forget_sets"], strict=True):
        assert r["draw"] == n["draw"] and r["status"] == n["status"] == "ok"
        assert r["metrics"]["forget_quality_norm"] >= 0.7, r
        assert n["metrics"]["forget_quality_norm"] <= 0.2, n


def test_a_bad_family_in_a_grid_stops_before_anything_is_written(tmp_path, run_cli, home):
    grid = tmp_path / "grid.toml"
    path = tiny(tmp_path, TINY.replace("draws = 3", "draws = [0, 10]"), "bad.toml")
    grid.write_text(f'scenarios = ["{path}"]\n\n[methods]\nnoop = {{}}\n')
    code, _, err = run_cli("grid", str(grid))
    assert code == 2 and "the draws are 0..9" in err, err
    assert not (home / "mlflow.db").exists()


@pytest.mark.slow
def test_a_grid_runs_a_family_as_one_submission_and_resumes(tmp_path):
    """A family cell: its sets prepared once, run one after another, recorded as one
    submission, as `submit` records it; run again, the cell is already on the board."""
    path = tiny(tmp_path, TINY.replace("draws = 3", "draws = [0, 2]"))
    grid = tmp_path / "grid.toml"
    grid.write_text(f'scenarios = ["{path}"]\n\n[methods]\nnoop = {{}}\n')
    doc = cli_json("grid", str(grid), "--no-figures")
    (cell,) = doc["cells"]
    assert (cell["state"], cell["status"], cell["seeds"]) == ("recorded", "ok", "4/4")
    assert cell["metrics"]["family_sets"] == 2
    again = cli_json("grid", str(grid), "--no-figures")
    assert [(c["state"], c["run_id"]) for c in again["cells"]] == [("on the board", cell["run_id"])]


def test_each_member_tells_its_methods_its_own_classes():
    """A method that reads `task.forget_classes` (fisher-forgetting zeroes those output
    rows) is told the classes of the set it runs on: for draw k the drawn class, not the
    scenario's listed one (every draw was told class 3, so fisher-forgetting, tuned on
    draw 1's class 4, forgot nothing: avg_gap 0.55 whatever its alpha)."""
    from types import SimpleNamespace

    from mu_bench.isolation.protocol import Limits
    from mu_bench.models.spec import ModelSpec
    from mu_bench.submission.execute import seed_job
    from mu_bench.submission.family import member
    from mu_bench.submission.plan import plan

    scenario = load("digits-class3")
    art = SimpleNamespace(
        data=SimpleNamespace(num_classes=10), spec=ModelSpec("mlp", num_classes=10)
    )
    told = {}
    for draw in (0, 1, 6):
        sub = plan("noop", member(scenario, draw), seeds=2)
        job = seed_job(sub, art, 0, Limits(budget=1.0), "cpu", {})
        told[draw] = job.request.forget_classes
    assert told == {0: (3,), 1: (4,), 6: (9,)}
