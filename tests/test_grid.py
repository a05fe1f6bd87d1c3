"""`mu-bench grid`: a grid file or flags, every cell planned before anything runs, one
submission per (method, parameters, scenario) with its idempotency key, and a grid
killed half-way that finishes, without duplicates, when started again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mu_bench.errors import UsageError
from mu_bench.submission.grid import MethodSet, grid_spec, load_grid_file, plan_grid

from .conftest import cli, cli_json

GRID = """
scenarios = ["digits-random10", "digits-class3"]
seeds = 2

[methods]
noop = {}
finetune = {epochs = 2}
"""


def _board(db: Path) -> list[tuple[str, str, str]]:
    """(run id, status, idempotency key) of every submission on a SQLite board."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if not {"runs", "tags"} <= tables:  # MLflow is still creating its schema
            return []
        return conn.execute(
            "SELECT r.run_uuid, r.status, k.value FROM runs r "
            "JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'mu_bench.kind' "
            "AND t.value = 'submission' "
            "LEFT JOIN tags k ON k.run_uuid = r.run_uuid AND k.key = 'mu_bench.submission_key' "
            "WHERE r.lifecycle_stage = 'active'"
        ).fetchall()


def test_grid_file_gives_each_method_its_parameter_sets(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(
        'scenarios = "digits-class3"\nseeds = 3\nbudget = "20%"\n'
        "[methods]\nnoop = {}\ngradient-ascent = [{lr = 1e-4}, {lr = 1e-3}]\n"
    )
    spec = load_grid_file(path)
    assert spec.methods == (
        MethodSet("noop"),
        MethodSet("gradient-ascent", {"lr": 1e-4}),
        MethodSet("gradient-ascent", {"lr": 1e-3}),
    )
    cells = plan_grid(spec, "cpu")
    assert [c.label for c in cells] == [
        "noop",
        "gradient-ascent lr=0.0001",
        "gradient-ascent lr=0.001",
    ]
    assert {c.sub.seeds for c in cells} == {3} and len({c.key for c in cells}) == 3
    assert cells[1].sub.params["lr"] == 1e-4
    # flags replace the file's lists; the same submission twice is one cell
    spec = grid_spec(path, "noop,noop", "digits-class3,digits-random10", None, None, False)
    assert [(c.scenario, c.label) for c in plan_grid(spec, "cpu")] == [
        ("digits-class3", "noop"),
        ("digits-random10", "noop"),
    ]


@pytest.mark.parametrize(
    "text, match",
    [
        ("methods = ['noop']\nscenarios = ['digits-class3']\nsneeds = 2\n", "unknown key 'sneeds'"),
        ("scenarios = ['digits-class3']\n[methods]\nnoop = 3\n", "methods.noop must be"),
        ("methods = ['noop']\nscenarios = ['digits-class3']\nseeds = 'two'\n", "whole number"),
        ("methods = ['noop'\n", "not valid TOML"),
        ("methods = ['noop']\n", "no scenarios"),
    ],
)
def test_bad_grid_files_are_refused(text, match, tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=match):
        grid_spec(path, None, None, None, None, False)


def test_a_bad_cell_anywhere_writes_nothing(tmp_path):
    db = tmp_path / "board.db"
    uri = f"sqlite:///{db}"
    for args, match in [
        (["--methods", "noop,finetun", "--scenarios", "digits-class3"], "finetune"),
        (["--methods", "noop", "--scenarios", "digits-class3,nope"], "nope"),
        (["--methods", "noop", "--scenarios", "digits-class3", "--jobs", "0"], "at least 1"),
        (["--methods", "noop", "--scenarios", "digits-class3", "--executor", "ray://x"], "dask"),
    ]:
        proc = cli("grid", *args, "--tracking-uri", uri)
        assert proc.returncode == 2, proc.stderr
        assert match in proc.stderr
    assert not db.exists()


def _grid(path: Path, uri: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mu_bench", "grid", str(path), "--jobs", "2", "--no-figures"]
        + ["--tracking-uri", uri, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.mark.slow
def test_grid_of_2_methods_2_scenarios_2_seeds_lands_4_submissions(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    db = tmp_path / "board.db"
    uri = f"sqlite:///{db}"
    doc = cli_json("grid", str(path), "--jobs", "2", "--no-figures", "--tracking-uri", uri)
    cells = doc["cells"]
    assert [(c["scenario"], c["method"]) for c in cells] == [
        ("digits-random10", "noop"),
        ("digits-random10", "finetune epochs=2"),
        ("digits-class3", "noop"),
        ("digits-class3", "finetune epochs=2"),
    ]
    assert {(c["state"], c["status"], c["seeds"]) for c in cells} == {("recorded", "ok", "2/2")}
    board = _board(db)
    assert sorted(r[0] for r in board) == sorted(c["run_id"] for c in cells)
    assert {r[1] for r in board} == {"FINISHED"} and len({r[2] for r in board}) == 4
    # the leaderboard shows them, finetune with its parameter
    shown = cli_json("leaderboard", "--all", "--tracking-uri", uri)
    assert {r["method"] for s in shown.values() for r in s} == {"noop", "finetune"}
    # a second run finds everything on the board and runs nothing
    again = cli_json("grid", str(path), "--jobs", "2", "--tracking-uri", uri)
    assert {c["state"] for c in again["cells"]} == {"on the board"}
    assert [c["run_id"] for c in again["cells"]] == [c["run_id"] for c in cells]
    assert {c["status"] for c in again["cells"]} == {"ok"}
    assert len(_board(db)) == 4


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_killed_grid_resumes_without_duplicates(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    db = tmp_path / "board.db"
    uri = f"sqlite:///{db}"
    first = _grid(path, uri, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not any(r[1] == "FINISHED" for r in _board(db)):
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "no submission landed"
            time.sleep(0.1)
    finally:
        with_pid = first.pid
        os.killpg(with_pid, signal.SIGKILL)  # the grid, its workers and fork servers
        first.wait()
    before = _board(db)
    done_before = {r[0] for r in before if r[1] == "FINISHED"}
    assert 1 <= len(done_before) < 4, before
    # A hang shows where it is: faulthandler prints every thread's stack on SIGABRT.
    second = _grid(path, uri, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    try:
        out, err = second.communicate(timeout=480)
    except subprocess.TimeoutExpired:
        second.send_signal(signal.SIGABRT)
        out, err = second.communicate()
        pytest.fail(f"the resumed grid hung:\n{err[-12000:]}")
    assert second.returncode == 0, err[-3000:]
    cells = json.loads(out)["cells"]
    board = _board(db)
    shown = (
        board,
        [
            {k: c.get(k) for k in ("method", "scenario", "state", "status", "seeds", "error")}
            for c in cells
        ],
        err[-3000:],
    )
    assert len(board) == 4, shown  # records cut short were discarded
    assert {r[1] for r in board} == {"FINISHED"}, shown
    assert Counter(r[2] for r in board).most_common(1)[0][1] == 1  # each key once
    assert {r[0] for r in board} >= done_before  # nothing that landed was run again
    states = Counter(c["state"] for c in cells)
    assert states == {"on the board": len(done_before), "recorded": 4 - len(done_before)}


@pytest.mark.slow
def test_a_grid_runs_a_stream_cell_request_by_request(tmp_path):
    """A cell on a scenario with a [stream] runs its requests one after another (the
    others in the batch) and lands with every request; a stream too long for its forget
    set stops the grid before anything runs."""
    from .test_streams import tiny

    stream = tiny(tmp_path)
    db = tmp_path / "board.db"
    uri = f"sqlite:///{db}"
    too_long = tmp_path / "long.toml"
    too_long.write_text(stream.read_text().replace("count = 30", "fraction = 0.001"))
    args = ["--methods", "noop,finetune", "--seeds", "2", "--no-figures", "--tracking-uri", uri]
    proc = cli("grid", *args, "--scenarios", f"digits-class3,{too_long}")
    assert proc.returncode == 2 and "exceeds the forget set" in proc.stderr, proc.stderr
    assert not db.exists()
    doc = cli_json("grid", *args, "--scenarios", f"{stream},digits-class3", "--jobs", "2")
    cells = {(c["scenario"], c["method"]): c for c in doc["cells"]}
    assert {(c["state"], c["status"]) for c in cells.values()} == {("recorded", "ok")}
    board = cli_json("leaderboard", "tiny-stream", "--tracking-uri", uri)
    rows = board["tiny-stream"] if isinstance(board, dict) else board
    assert {r["method"] for r in rows} == {"noop", "finetune"}
    assert all(r["stream_unlearn_seconds"] >= 0 for r in rows)
