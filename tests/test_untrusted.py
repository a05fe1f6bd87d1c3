"""What comes back from a worker is untrusted, and plugin code never runs in the harness:
output files are read only as regular single-link files under a cap, descriptions are
parsed strictly, inputs are copies where Landlock cannot make them read-only, a method
is described by a sandboxed worker (`methods --load` too), the spawn path is confined
like the fork path, and the board marks unsandboxed runs unverified."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from mu_bench.isolation import sandbox
from mu_bench.isolation.protocol import (
    SCHEMA_VERSION,
    InspectRequest,
    Job,
    Limits,
    MethodInfo,
    MethodRef,
    ProtocolError,
    parse_request,
)
from mu_bench.isolation.runner import lay_out, read_result
from mu_bench.isolation.untrusted import UntrustedOutput, check_tree, read_output

from .conftest import PLUGINS, cli_json

MECHANISM = sandbox.detect() if sys.platform == "linux" else "none"


def test_read_output_takes_only_regular_single_link_files_under_the_cap(tmp_path):
    good = tmp_path / "result.json"
    good.write_bytes(b"x" * 10)
    assert read_output(good, 10) == b"x" * 10
    with pytest.raises(UntrustedOutput, match="over its 9 cap"):
        read_output(good, 9)
    secret = tmp_path / "gold.pt"
    secret.write_bytes(b"gold")
    (tmp_path / "link").symlink_to(secret)
    with pytest.raises(UntrustedOutput, match="not a regular file"):
        read_output(tmp_path / "link", 100)
    os.link(secret, tmp_path / "hard")
    with pytest.raises(UntrustedOutput, match="2 links"):
        read_output(tmp_path / "hard", 100)
    os.mkfifo(tmp_path / "fifo")  # would block a plain open()
    with pytest.raises(UntrustedOutput, match="not a regular file"):
        read_output(tmp_path / "fifo", 100)
    with pytest.raises(FileNotFoundError):
        read_output(tmp_path / "missing", 100)
    state = tmp_path / "state"
    (state / "sub").mkdir(parents=True)
    (state / "sub" / "ok.pt").write_bytes(b"1")
    assert check_tree(state) is None
    (state / "sub" / "sneaky").symlink_to(secret)
    assert "sub/sneaky" in check_tree(state)


def test_a_linked_or_huge_result_is_invalid_not_an_error(tmp_path):
    (tmp_path / "output").mkdir()
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "status": "ok"}))
    (tmp_path / "output" / "result.json").symlink_to(target)
    assert "refused" in read_result(tmp_path)
    (tmp_path / "output" / "result.json").unlink()
    (tmp_path / "output" / "result.json").write_text(" " * (2 << 20))
    assert "refused" in read_result(tmp_path)


def _info(**changes) -> dict:
    doc = MethodInfo("m", reads="forget").to_json()
    doc.update(changes)
    return doc


def test_method_info_round_trips_and_is_parsed_strictly():
    spec = {"arch": "mlp", "params": {}, "input_shape": [1, 8, 8], "num_classes": 10}
    info = MethodInfo("m", output_specs=((spec, spec),), train_fields=("a",))
    assert MethodInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    for bad in (
        _info(reads="everything"),
        _info(scope="all"),
        _info(has_training_stage="yes"),
        _info(surprise=1),
        _info(output_specs=[[spec, {"arch": "mlp"}]]),
        _info(train_fields="a"),
        _info(schema_version=99),
    ):
        with pytest.raises(ProtocolError):
            MethodInfo.from_json(bad)
    long = MethodInfo.from_json(_info(summary="x" * 50_000))
    assert len(long.summary) == MethodInfo.MAX_TEXT


def test_an_inspect_request_round_trips_through_a_job():
    req = InspectRequest(MethodRef("noop", "m:C", "d", "1"), {"lr": "0.1"}, dataset="digits")
    job = Job("inspect", req, {}, Limits(10.0, memory_bytes=1 << 30))
    again = Job.from_json(json.loads(json.dumps(job.to_json())))
    assert again.request == req and again.limits.memory_bytes == 1 << 30
    assert parse_request(req.to_json()) == req


def test_inputs_are_copies_where_landlock_cannot_make_them_read_only(tmp_path):
    from mu_bench.isolation.protocol import UnlearnRequest

    source = tmp_path / "cache-model.pt"
    source.write_bytes(b"weights")
    req = UnlearnRequest(
        MethodRef("m", "m:C", "d", "1"), {}, 0, 0, 1.0, "cpu", 10, {}, {}, {"model": "x"}
    )
    job = Job("seed-0", req, {"inputs/model.pt": source}, Limits(1.0))
    linked = lay_out(job, tmp_path / "a", link=True)
    assert os.path.samefile(source, tmp_path / "a" / "inputs" / "model.pt") and linked
    assert lay_out(job, tmp_path / "b", link=False) == {}
    copy = tmp_path / "b" / "inputs" / "model.pt"
    assert not os.path.samefile(source, copy) and copy.read_bytes() == b"weights"
    assert (tmp_path / "b" / "tmp").is_dir() and (tmp_path / "b" / "output").is_dir()


def test_the_board_marks_unsandboxed_runs_unverified():
    from mu_bench.leaderboard import render

    df = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "method": ["a", "b", "c"],
            "status": ["ok", "ok", "ok"],
            "seeds": ["1/1"] * 3,
            "seeds_total": [1] * 3,
            "seeds_ok": [1] * 3,
            "score": [0.9, 0.8, 0.7],
            "params": ["{}"] * 3,
            "version": ["1"] * 3,
            "run_id": ["r1", "r2", "r3"],
            "sandbox": ["landlock+bwrap", "none", float("nan")],
        }
    )
    board = render.board_rows(df)
    assert [r["method"] for r in board.rows] == ["a", "b‡", "c‡"]
    assert any("unverified" in note for note in board.notes)
    wide = render.board_rows(df, wide=True)
    assert [r["status"] for r in wide.rows] == ["ok", "ok, unverified", "ok, unverified"]
    assert [r["sandbox"] for r in render.records(df)] == ["landlock+bwrap", "none", None]


def test_the_harness_never_imports_a_plugin():
    """Planning a submission and listing with --load describe methods in workers."""
    code = (
        "import sys\n"
        "from mu_bench.submission.plan import plan\n"
        "sub = plan('finetune', 'digits-class3', params={'lr': '0.02'})\n"
        "assert sub.params['lr'] == 0.02 and sub.method.reads == 'retain', sub\n"
        "assert sub.method.output_spec.__self__ is sub.method\n"
        "loaded = [m for m in sys.modules if m.startswith('mu_bench.methods.')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_methods_load_describes_each_plugin_from_a_worker():
    rows = {r["name"]: r for r in cli_json("methods", "--load", plugins=("faults",))}
    assert rows["finetune"]["reads"] == "retain" and "lr" in rows["finetune"]["fields"]
    assert rows["sisa"]["training_stage"] is True
    assert rows["fault-chaos"]["reads"] == "forget"


@pytest.mark.skipif(MECHANISM == "none", reason="no sandbox on this machine")
def test_the_spawn_path_is_confined_too(monkeypatch):
    """A fresh interpreter (the CUDA path) confines itself before torch and the plugin:
    the probe, reading `../request.json` from its `output/`, still works; the seed is
    tagged with this machine's sandbox."""
    from mu_bench.submission.pipeline import run
    from mu_bench.submission.plan import plan

    monkeypatch.setenv("MU_BENCH_WORKER_START", "spawn")
    monkeypatch.syspath_prepend(str(PLUGINS / "probes"))
    report = run(plan("probe-forget-only", "digits-class3", seeds=1), "cpu").report
    assert report.status == "ok", report.seeds[0].error
    assert report.sandbox == MECHANISM
