"""The leaderboard for people: a terminal board in 100 columns that names every row,
`--wide`, real JSON types, `show RUN`, and the store as MLflow's UI reads it (run names,
grouped metrics, reference values once per experiment, standard tags, the scenario as an
artifact and an input, relative artifact locations). Reports are made by hand: nothing
is trained here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mu_bench.evaluation.catalogue import bare, stored
from mu_bench.evaluation.scoring import aggregate
from mu_bench.leaderboard import ranking, render, store
from mu_bench.scenario import load
from mu_bench.submission.report import Report, SeedReport

SCENARIO = "digits-random10"
TRACEBACK = 'Traceback (most recent call last):\n  File "m.py", line 3\nRuntimeError: boom'


def make(
    method: str,
    params: dict,
    overrides: dict | None = None,
    *,
    seeds: int = 8,
    failed: int = 0,
    score: float | None = 0.05,
    unlearn: float = 0.3,
    in_scope: bool = True,
    notes: tuple[str, ...] = (),
) -> Report:
    s = load(SCENARIO)
    ok = seeds - failed
    metrics: dict[str, float] = {}
    if ok:
        metrics = {
            "forget_acc": 0.95,
            "forget_acc_std": 0.01,
            "retain_acc": 0.99,
            "test_acc": 0.961,
            "test_acc_std": 0.002,
            "mia_efficacy": 0.0123,
            "avg_gap": 0.02,
            "unlearn_seconds": unlearn,
            "retrain_seconds": 1.2,
        }
        if unlearn >= 1e-3:
            metrics["speedup"] = 1.2 / unlearn
        if score is not None:
            metrics.update(
                forget_quality=score * 2,
                forget_quality_ceiling=0.182,
                forget_quality_norm=score * 2 / 0.182,
                score=score,
                score_norm=score / 0.182,
                forget_quality_models=float(min(ok, 8)),
            )
    seed_reports = tuple(
        SeedReport(i, "ok", unlearn, unlearn + 0.05, metrics={"forget_acc": 0.95})
        if i < ok
        else SeedReport(i, "error", error="RuntimeError: boom", traceback=TRACEBACK)
        for i in range(seeds)
    )
    return Report(
        scenario=SCENARIO,
        scenario_hash=s.content_hash,
        method=method,
        distribution="mu-bench",
        version="0.1.0",
        params=params,
        preset="digits",
        budget_seconds=30.0,
        device="cpu",
        torch_version="2.x",
        harness_version="0.1.0",
        reads="both",
        in_scope=in_scope,
        seeds=seed_reports,
        metrics=metrics,
        reference={
            "gold": {"forget_acc": 0.96},
            "gold_std": {"forget_acc": 0.01},
            "original": {"forget_acc": 1.0},
        },
        notes=notes,
        overrides=overrides or {},
        scenario_toml=s.source_text,
        sandbox="landlock+bwrap",  # confined runs; unverified ones: test_untrusted
    )


FT = {"epochs": 5, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0005, "batch_size": 128}
LONG = {"epochs": 7, "lr": 0.003, "momentum": 0.5, "weight_decay": 0.01, "batch_size": 32}
REPORTS = [
    make("finetune", FT),
    make("finetune", {**FT, "lr": 0.02}, {"lr": 0.02}, score=0.04),
    make("finetune", LONG, {k: v for k, v in LONG.items() if FT[k] != v}, score=0.03),
    make("gradient-ascent", {"lr": 1e-4, "epochs": 5}, seeds=3, score=0.06),
    make("noop", {}, unlearn=2e-6, score=0.0),
    make("fisher-forgetting", {"alpha": 1e-6}, failed=2, score=0.02, notes=("a [note]",)),
    make("boundary-shrink", {"lr": 1e-3}, in_scope=False, score=0.0),
    make("scrub", {"alpha": 0.001}, seeds=2, failed=2, score=None),
]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    folder = tmp_path_factory.mktemp("board")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    recorded = [store.record(r, uri) for r in REPORTS]
    return uri, recorded


def test_sig_and_costs():
    assert [render.sig(v) for v in (0.96666, 0.041, 1.0, 12.34, 654736.9, 0, None)] == [
        "0.967",
        "0.0410",
        "1.00",
        "12.3",
        "654737",
        "0",
        "-",
    ]
    assert render.seconds_text(2e-6) == "<1 ms" and render.seconds_text(0.0123) == "12.3 ms"
    assert render.speedup_text(600000.0, 2e-6) == "n/a"
    assert render.speedup_text(5000.0, 0.002) == ">1000x"
    assert render.speedup_text(4.0, 0.3) == "4.00x"
    # below the timing floor no speed-up is computed at all (noop's 852,947)
    m = aggregate(
        [{k: 0.5 for k in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")}],
        [2e-6],
        {k: 0.5 for k in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")},
        1.2,
    )
    assert "speedup" not in m and m["unlearn_seconds"] == 2e-6


def test_board_fits_100_columns_and_names_every_row(board, run_cli, monkeypatch):
    uri, _ = board
    monkeypatch.setenv("COLUMNS", "100")
    code, out, err = run_cli("leaderboard", SCENARIO, "--tracking-uri", uri)
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    rows = render.board_rows(ranking.table(ranking.load(uri, SCENARIO))).rows
    named = [(r["method"], r["params"]) for r in rows]
    assert len(named) == len(set(named)) == len(REPORTS)  # every row its own (method, label)
    assert all(re.search(rf"{re.escape(m)}\s+{re.escape(p)}\s", out) for m, p in named), out
    text = "\n".join(lines)
    assert "lr=0.02" in text and "digits" in text  # overrides, or the preset's name
    assert any(p.startswith("#") for _, p in named)  # overrides too long for the column
    assert "3/3*" in text and "fewer seeds than this board's usual 8" in text
    assert "boundary-shrink†" in text and "out of scope" in text
    assert "<1 ms" in text and "654737" not in text and "600000" not in text
    scrub = next(line for line in lines if " scrub " in line)
    assert "error" in scrub and "0/2" in scrub  # a failed submission keeps its row
    for label in ("score norm", "F/ceil", "forget", "test", "MIA", "cost", "seeds", "params"):
        assert label in text


def test_wide_shows_every_metric_status_and_run_ids(board, run_cli):
    uri, recorded = board
    code, out, _ = run_cli("leaderboard", SCENARIO, "--tracking-uri", uri, "--wide")
    assert code == 0
    for label in ("status", "MIA-eff", "LiRA AUC", "speed-up", "run", "partial"):
        assert label in out
    assert all(r.run_id[:8] in out for r in recorded)
    assert "n/a" in out  # noop's speed-up
    assert "0.967±" not in out and "0.961±0.0020" in out


def test_output_formats_exclude_each_other_and_json_has_real_types(board, run_cli):
    uri, _ = board
    for pair in (("--json", "--csv"), ("--csv", "--markdown"), ("--json", "--markdown")):
        code, out, err = run_cli("leaderboard", "--tracking-uri", uri, *pair)
        assert code == 2 and out == "" and "exclude each other" in err
    code, out, _ = run_cli("leaderboard", "--tracking-uri", uri, "--json")
    rows = json.loads(out)[SCENARIO]
    first = rows[0]
    assert first["in_scope"] is True and isinstance(first["params"], dict)
    assert isinstance(first["seeds"], int) and isinstance(first["seeds_ok"], int)
    assert isinstance(first["overrides"], dict) and isinstance(first["score_norm"], float)
    assert {r["method"]: r["in_scope"] for r in rows}["boundary-shrink"] is False
    code, md, _ = run_cli("leaderboard", "--tracking-uri", uri, "--markdown")
    assert code == 0 and max(len(line) for line in md.splitlines()) <= 120
    code, csv, _ = run_cli("leaderboard", "--tracking-uri", uri, "--csv")
    assert csv.splitlines()[0].startswith("rank,method")


def test_show_prints_one_submission_whole(board, run_cli):
    uri, recorded = board
    failed = next(r for r in recorded if r.method == "fisher-forgetting")
    code, out, err = run_cli("show", failed.run_id[:10], "--tracking-uri", uri)
    assert code == 0, err
    for text in (
        "fisher-forgetting",
        "alpha",
        "preset",
        "digits",
        "6/8 seeds ok",
        "error",
        "RuntimeError: boom",
        'File "m.py", line 3',
        "note: a [note]",
    ):
        assert text in out, text
    lr = next(r for r in recorded if r.overrides == {"lr": 0.02})
    code, out, _ = run_cli("show", lr.run_id, "--tracking-uri", uri)
    assert "changed from the preset/defaults" in out
    code, out, _ = run_cli("show", lr.run_id, "--tracking-uri", uri, "--json")
    assert json.loads(out)["overrides"] == {"lr": 0.02}
    code, _, err = run_cli("show", "zzzz", "--tracking-uri", uri)
    assert code == 2 and "no submission 'zzzz'" in err


def test_runs_read_well_in_mlflow(board):
    uri, recorded = board
    c = store.client(uri)
    exp = c.get_experiment_by_name(store.experiment_name(SCENARIO))
    assert exp.tags[store.KIND_TAG] == store.MODEL_TRAINING  # opens on the runs table
    view = json.loads(exp.tags[store.VIEW_TAG])
    assert view["orderByKey"] == "metrics.`1_headline/score_norm`" and not view["orderByAsc"]
    assert view["searchFilter"] == store.SUBMISSIONS
    assert "metrics.`2_accuracy/forget_acc`" in view["selectedColumns"]
    lr = next(r for r in recorded if r.overrides == {"lr": 0.02})
    run = c.get_run(lr.run_id)
    assert run.info.run_name == "finetune lr=0.02 · 8 seeds"
    assert "1_headline/score" in run.data.metrics and "2_accuracy/forget_acc" in run.data.metrics
    assert not any(k.startswith(("gold.", "original.")) for k in run.data.metrics)
    tags = run.data.tags
    assert tags["mlflow.user"] and tags["mlflow.source.name"].endswith("finetune.py")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    if head.returncode == 0:  # a git checkout: the method's commit is recorded
        assert tags["mlflow.source.git.commit"] == head.stdout.strip()
    assert "parameters (preset `digits`)" in tags["mlflow.note.content"]
    assert run.inputs.dataset_inputs[0].dataset.name == SCENARIO
    with open(c.download_artifacts(lr.run_id, "scenario.toml")) as fh:
        assert 'name = "digits-random10"' in fh.read()
    seeds = c.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{lr.run_id}'")
    assert sorted(s.info.run_name for s in seeds)[0] == "finetune · seed 0"
    seed = seeds[0]
    assert seed.data.tags["mu_bench.scenario_hash"] == lr.scenario_hash
    assert seed.data.params["lr"] == "0.02"
    refs = c.search_runs([exp.experiment_id], "tags.mu_bench.kind = 'reference'")
    assert sorted(r.data.tags["mu_bench.role"] for r in refs) == ["gold", "original"]
    gold = next(r for r in refs if r.data.tags["mu_bench.role"] == "gold")
    assert gold.data.metrics["2_accuracy/forget_acc"] == 0.96  # once, for 8 submissions


def test_metric_names_group_and_ungroup():
    assert stored("score") == "1_headline/score" and bare("1_headline/score") == "score"
    assert stored("forget_acc_std") == "2_accuracy/forget_acc_std"
    assert stored("method.shards_retrained") == "7_method/method.shards_retrained"
    assert bare("score") == "score" and bare("a/b") == "a/b"  # old names pass through


def test_a_store_can_be_moved(tmp_path, run_cli):
    first = tmp_path / "a" / "runs"
    first.mkdir(parents=True)
    uri = f"sqlite:///{first / 'mlflow.db'}"
    r = store.record(make("finetune", FT), uri)
    c = store.client(uri)
    assert c.get_experiment_by_name(store.experiment_name(SCENARIO)).artifact_location.startswith(
        "mu-bench:"
    )
    moved = tmp_path / "b" / "elsewhere"
    shutil.move(first, moved)
    new_uri = f"sqlite:///{moved / 'mlflow.db'}"
    with open(store.client(new_uri).download_artifacts(r.run_id, "report.json")) as fh:
        assert json.load(fh)["run_id"] == r.run_id
    code, out, err = run_cli("show", r.run_id, "--tracking-uri", new_uri)
    assert code == 0 and "finetune" in out, err
    assert not first.exists()


def test_ranking_reads_runs_recorded_before_groups(tmp_path):
    """A run logged with bare metric names (an older store) still ranks beside new ones."""
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    new = store.record(make("finetune", FT), uri)  # score_norm 0.05 / 0.182 = 0.27
    c = store.client(uri)
    exp = c.get_experiment_by_name(store.experiment_name(SCENARIO))
    tags = {
        "mu_bench.kind": "submission",
        "mu_bench.method": "old-method",
        "mu_bench.status": "ok",
        "mu_bench.seeds_ok": "8/8",
        "mu_bench.params": "{}",
    }
    old = c.create_run(exp.experiment_id, tags=tags)
    for name, value in (("score_norm", 0.9), ("avg_gap", 0.01), ("forget_acc", 0.9)):
        c.log_metric(old.info.run_id, name, value)
    board = ranking.table(ranking.load(uri, SCENARIO))
    assert list(board["method"]) == ["old-method", "finetune"]
    assert board["score_norm"].tolist() == pytest.approx([0.9, new.metrics["score_norm"]])


def test_without_a_ceiling_score_ranks_within_n():
    """Raw score is only comparable at one N: a 3-seed submission with a higher score
    still ranks below the 8-seed ones, and the board says why."""
    import pandas as pd

    rows = []
    for method, n, score in (("a", 8, 0.05), ("b", 3, 0.30), ("c", 8, 0.10), ("d", 2, 0.2)):
        rows.append(
            {
                "run_id": method * 8,
                "start_time": 0,
                "tags.mu_bench.method": method,
                "tags.mu_bench.status": "ok",
                "tags.mu_bench.seeds_ok": f"{n}/{n}",
                "tags.mu_bench.params": "{}",
                "metrics.score": score,
                "metrics.forget_quality": score,
                "metrics.forget_quality_models": float(n),
                "metrics.avg_gap": 0.01,
            }
        )
    board = ranking.table(pd.DataFrame(rows))
    assert list(board["method"]) == ["c", "a", "b", "d"]
    notes = render.board_rows(board).notes
    assert any("ranked within N, N=8, then N=3, then N=2" in n for n in notes), notes
    assert any("fewer seeds" in n for n in notes)


def test_submit_summary_shows_parameters_and_tracebacks():
    from rich.console import Console

    long = "Traceback (most recent call last):\n" + "".join(
        f'  File "m.py", line {i}\n' for i in range(60)
    )
    report = make("fisher-forgetting", {"alpha": 1e-6}, failed=3)
    seeds = list(report.seeds)
    seeds[-1] = SeedReport(7, "crashed", error="killed", traceback=long + "MemoryError")
    from dataclasses import replace

    console = Console(width=100, record=True)
    console.print(render.report_table(replace(report, seeds=tuple(seeds))))
    text = console.export_text()
    assert "parameters used (preset digits): alpha=1e-06" in text
    assert "seeds 5, 6 (error): traceback" in text  # one block for a shared traceback
    assert 'File "m.py", line 3' in text and "RuntimeError: boom" in text
    assert "seed 7 (crashed): traceback, last 30 of 62 lines" in text
    assert "MemoryError" in text and "line 0\n" not in text
    console = Console(width=100, record=True)
    console.print(render.report_table(report, extras=False))  # `show` prints its own
    assert "traceback" not in console.export_text()
