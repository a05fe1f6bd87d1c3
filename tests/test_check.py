"""`mu-bench check` and `mu_bench.testing`: every built-in keeps the plugin contract, and
each contract-breaking test plugin (tests/plugins/contract/) fails exactly the check for
the rule it breaks, through the real runner."""

from __future__ import annotations

import json
import sys
import warnings

import pytest

from mu_bench import registry
from mu_bench.testing import (
    CheckFailed,
    CheckWarning,
    Subject,
    check_declarations,
    check_presets_validate,
    check_reads_only_declared_sets,
    check_same_seed_same_model,
    check_seeds_give_different_models,
    check_stops_near_budget,
    check_training_stage_follows_train_fields,
    check_unlearn_returns_a_valid_model,
    parametrize_with_checks,
)

from .conftest import PLUGINS, cli

BUILTINS = [n for n, e in registry.discover().items() if e.distribution == "mu-bench"]
# The built-ins that ignore their seed on purpose, and say so (a warning, not a failure).
SEED_BLIND = {"noop", "influence", "boundary-shrink"}


@parametrize_with_checks(BUILTINS)
def test_every_builtin_keeps_the_contract(check):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = check()
    warned = [w for w in caught if issubclass(w.category, CheckWarning)]
    if warned:  # only the declared seed-blind methods warn, and only about their seed
        assert check.subject.name in SEED_BLIND, warned[0].message
        assert check.name == "check_seeds_give_different_models"
    assert result.status in ("pass", "warn", "skip")


def test_the_builtins_are_all_checked():
    assert len(BUILTINS) >= 17 and {"noop", "finetune", "sisa"} <= set(BUILTINS)


@pytest.fixture
def contract(monkeypatch):
    """The contract test plugins on sys.path (this process) and PYTHONPATH (workers)."""
    folder = str(PLUGINS / "contract")
    monkeypatch.syspath_prepend(folder)
    monkeypatch.setenv("PYTHONPATH", folder)
    made: list[Subject] = []

    def subject(name: str) -> Subject:
        made.append(Subject(name))
        return made[-1]

    yield subject
    for s in made:  # their scratch folders, whatever the test's outcome
        s.close()


def _status(fn, subject) -> tuple[str, str]:
    from mu_bench.testing import Check

    result = Check(subject, fn).run()
    return result.status, result.detail


def test_a_good_plugin_passes_the_run_checks(contract):
    s = contract("contract-good")
    for fn in (
        check_unlearn_returns_a_valid_model,
        check_reads_only_declared_sets,
        check_same_seed_same_model,
        check_seeds_give_different_models,
        check_stops_near_budget,
    ):
        assert _status(fn, s)[0] == "pass", fn.__name__


def test_a_seed_blind_method_fails_unless_it_declares_so(contract):
    s = contract("contract-seed-blind")
    status, detail = _status(check_seeds_give_different_models, s)
    assert status == "fail" and "ignores_seed = True" in detail
    assert _status(check_same_seed_same_model, s)[0] == "pass"


def test_an_unseeded_method_fails_the_same_seed_check(contract):
    s = contract("contract-unseeded")
    status, detail = _status(check_same_seed_same_model, s)
    assert status == "fail" and "task.generator" in detail


def test_a_method_that_ignores_its_budget_fails_the_budget_check(contract):
    s = contract("contract-ignores-budget")
    status, detail = _status(check_stops_near_budget, s)
    assert status == "fail" and "task.budget.expired" in detail, detail


def test_touching_an_undeclared_set_fails_the_reads_check(contract):
    s = contract("contract-peeks")
    status, detail = _status(check_reads_only_declared_sets, s)
    assert status == "fail" and "does not declare that it reads the forget set" in detail


def test_non_finite_weights_fail_and_later_checks_are_skipped(contract):
    s = contract("contract-nan")
    status, detail = _status(check_unlearn_returns_a_valid_model, s)
    assert status == "fail" and "non-finite weights" in detail
    assert _status(check_same_seed_same_model, s)[0] == "skip"


def test_bad_declarations_and_presets_fail_before_anything_runs(contract):
    s = contract("contract-static")
    status, detail = _status(check_declarations, s)
    assert status == "fail" and "default_budget = 'soon'" in detail
    status, detail = _status(check_presets_validate, s)
    assert status == "fail" and "digits" in detail and "greater than 0" in detail
    assert s._work is None  # no seed ran (the check worker has its own folder)


def test_a_training_stage_reading_a_field_outside_train_fields_fails(contract):
    s = contract("contract-stage-leak")
    status, detail = _status(check_training_stage_follows_train_fields, s)
    assert status == "fail" and "changes with lr" in detail and "train_fields" in detail


def test_a_check_raises_on_failure_for_pytest(contract):
    from mu_bench.testing import yield_checks

    checks = {c.name: c for c in yield_checks("contract-not-a-method")}
    with pytest.raises(CheckFailed, match="not a Method subclass"):
        checks["check_is_method_with_docstring"]()
    assert checks["check_declarations"].run().status == "skip"


def test_cli_check_table_and_exit_codes(run_cli, contract):
    code, out, err = run_cli("check", "noop", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] and doc["counts"]["fail"] == 0 and doc["counts"]["warn"] == 1
    seed = next(c for c in doc["checks"] if c["check"] == "check_seeds_give_different_models")
    assert seed["status"] == "warn" and "forget quality will be 0" in seed["detail"]
    code, out, _ = run_cli("check", "contract-static")
    assert code == 1 and "declarations" in out and "FAILED" in out
    code, _, err = run_cli("check", "finetuen")
    assert code == 2 and "Did you mean 'finetune'" in err


def test_the_real_command_checks_a_plugin_from_its_entry_point():
    proc = cli("check", "contract-seed-blind", plugins=("contract",))
    assert proc.returncode == 1, proc.stderr
    assert "seeds_give_different_models" in proc.stdout and "FAILED" in proc.stdout


def test_methods_load_exits_1_on_a_broken_plugin(run_cli, contract):
    code, _, err = run_cli("methods", "--load")
    assert code == 1 and "not a mu_bench Method subclass" in err


def test_methods_name_describes_one_method(run_cli):
    code, out, err = run_cli("methods", "finetune", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["reads"] == "retain" and d["scope"] == "any" and d["distribution"] == "mu-bench"
    lr = next(f for f in d["fields"] if f["name"] == "lr")
    assert lr["default"] == 0.1 and lr["constraints"] == "gt 0"
    from mu_bench import registry

    shipped = registry.get("finetune").load().presets
    assert d["presets"] == json.loads(json.dumps(shipped))  # every setting's, as shipped
    assert run_cli("methods", "finetuen")[0] == 2
    assert run_cli("methods", "--load")[0] == 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
