"""`mu-bench check` never imports plugin code in the harness: the checks that need the
method's class run in a sandboxed check worker, which answers with a `CheckReport`
(tests/plugins/checkprobe/: plugins that record where they are imported, hang, exit or
forge the worker's answer on import)."""

from __future__ import annotations

import json
import os
import re
import sys
import time

import pytest

from mu_bench.contract import STATIC_CHECKS
from mu_bench.isolation.protocol import (
    CheckReport,
    CheckRequest,
    Job,
    Limits,
    MethodRef,
    ProtocolError,
    parse_request,
)
from mu_bench.testing import CHECKS

from .conftest import PLUGINS, cli

STATIC = tuple(STATIC_CHECKS)
RUNS = [fn.__name__ for fn in CHECKS if fn.__name__ not in STATIC][1:]  # after registered


@pytest.fixture
def probes(monkeypatch):
    """The checkprobe plugins on sys.path (this process: the registry's metadata) and
    PYTHONPATH (workers)."""
    folder = str(PLUGINS / "checkprobe")
    monkeypatch.syspath_prepend(folder)
    monkeypatch.setenv("PYTHONPATH", folder)


def _checks(out: str) -> dict[str, dict[str, str]]:
    return {c["check"]: c for c in json.loads(out)["checks"]}


def test_the_plugin_is_imported_only_in_a_worker(run_cli, probes, tmp_path, monkeypatch):
    marker = tmp_path / "imported-in"
    monkeypatch.setenv("MU_BENCH_PROBE_MARKER", str(marker))
    monkeypatch.delitem(sys.modules, "mu_bench_checkprobe_marker", raising=False)
    code, out, err = run_cli("check", "probe-marker", "--json")
    assert code == 0, err
    checks = _checks(out)
    doc = checks["check_is_method_with_docstring"]
    found = re.search(r"imported in process (\d+)", doc["detail"])
    assert doc["status"] == "pass" and found, doc
    assert int(found.group(1)) != os.getpid()  # the check worker's process, not ours
    assert "mu_bench_checkprobe_marker" not in sys.modules
    written = marker.read_text().split() if marker.exists() else []
    assert str(os.getpid()) not in written  # (a sandboxed worker cannot write it at all)
    assert checks["check_unlearn_returns_a_valid_model"]["status"] == "pass"


def test_a_builtin_goes_the_same_way(run_cli, monkeypatch):
    monkeypatch.delitem(sys.modules, "mu_bench.methods.noop", raising=False)
    code, out, err = run_cli("check", "noop", "--json")
    assert code == 0, err
    assert _checks(out)["check_declarations"]["status"] == "pass"
    assert "mu_bench.methods.noop" not in sys.modules


@pytest.mark.parametrize(
    "method, reason",
    [
        ("probe-raises", "failed to import: ImportError: probe: a dependency is missing"),
        ("probe-exit", "crashed its worker while importing: worker exited with code 0"),
        ("probe-garbage", "malformed check report"),
    ],
)
def test_a_plugin_that_breaks_on_import_fails_its_checks(run_cli, probes, method, reason):
    code, out, err = run_cli("check", method, "--json")
    assert code == 1, err
    checks = _checks(out)
    assert checks["check_registered"]["status"] == "pass"
    assert checks["check_imports"]["status"] == "fail"
    assert reason in checks["check_imports"]["detail"]
    # Nothing else is examined or run: the forged passes are not believed.
    assert {checks[n]["status"] for n in STATIC[1:] + tuple(RUNS)} == {"skip"}
    assert "check_made_up" not in checks


def test_a_plugin_whose_import_hangs_fails_in_time(run_cli, probes, monkeypatch):
    from mu_bench import testing

    monkeypatch.setattr(testing, "STATIC_LIMITS", dict(budget=1.0, grace=0.5, startup=120.0))
    clock = time.monotonic()
    code, out, err = run_cli("check", "probe-hang", "--json")
    assert code == 1, err
    assert time.monotonic() - clock < 60
    imports = _checks(out)["check_imports"]
    assert imports["status"] == "fail" and "did not import in time" in imports["detail"]


def _report(results, **facts) -> dict:
    return {"schema_version": 1, "results": [list(r) for r in results], **facts}


def test_a_check_report_is_parsed_strictly():
    good = [(n, "pass", "fine") for n in STATIC]
    report = CheckReport.from_json(_report(good, is_method=True, scope="class"), STATIC)
    assert report.scope == "class" and report.results[0] == (STATIC[0], "pass", "fine")
    full = CheckReport(
        tuple(good), True, "retain", "any", True, True, ("lr",), {"mode": ("a", "b")}
    )
    assert CheckReport.from_json(json.loads(json.dumps(full.to_json())), STATIC) == full
    long = [(n, "warn", "x" * 10**6) for n in STATIC]
    assert len(CheckReport.from_json(_report(long), STATIC).results[0][2]) == 4000
    bad = [
        _report(good[:-1]),  # a check missing
        _report([*good, ("check_extra", "pass", "")]),  # one not asked for
        _report(good[::-1]),  # out of order
        _report([(n, "passed", "") for n in STATIC]),  # no such status
        _report(good, is_method="yes"),
        _report(good, scope="everything"),
        _report(good, train_fields="lr"),
        _report(good, verdict="pass"),  # an unknown key
        {"results": [list(r) for r in good]},  # no schema version
    ]
    for doc in bad:
        with pytest.raises(ProtocolError):
            CheckReport.from_json(doc, STATIC)


def test_the_real_command_survives_a_plugin_that_exits_on_import():
    proc = cli("check", "probe-exit", plugins=("checkprobe",), env={"COLUMNS": "200"})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "imports" in proc.stdout and "exited with code 0" in proc.stdout
    assert "FAILED" in proc.stdout


def test_a_check_request_round_trips_through_a_job():
    req = CheckRequest(MethodRef("noop", "m:C", "d", "1"))
    job = Job("check", req, {}, Limits(10.0))
    again = Job.from_json(json.loads(json.dumps(job.to_json())))
    assert again.request == req and parse_request(req.to_json()) == req


def test_listing_runs_no_plugin_code_not_even_its_package(run_cli, probes, monkeypatch):
    for module in ("mu_bench_checkprobe_pkg", "mu_bench_checkprobe_pkg.method"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    code, out, err = run_cli("methods", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    summary = "Lives in a package whose __init__ the listing must not run."
    assert rows["probe-package"]["summary"] == summary
    assert rows["noop"]["summary"].startswith("Return the original model")  # editable install
    assert not [m for m in sys.modules if m.startswith("mu_bench_checkprobe")]
