"""Method discovery: metadata-only listing, did-you-mean, duplicates, parameter validation."""

import subprocess
import sys

import pytest

from mu_bench import registry
from mu_bench.errors import UsageError
from mu_bench.method import instantiate, parse_params

from .conftest import cli, cli_json, plugin_path

BUILTINS = {"noop", "retrain", "finetune", "gradient-ascent"}


def test_builtins_are_registered_through_the_entry_point_group():
    methods = registry.discover()
    assert set(methods) >= BUILTINS
    for name in BUILTINS:
        entry = methods[name]
        assert entry.distribution == "mu-bench"
        assert entry.value.startswith("mu_bench.methods.")


def test_listing_reads_summaries_without_importing_plugins():
    code = (
        "import sys; from mu_bench import registry\n"
        "s = {n: e.summary() for n, e in registry.discover().items()}\n"
        "assert 'retain set' in s['finetune'], s\n"
        "loaded = [m for m in sys.modules if m.startswith('mu_bench.methods.')]\n"
        "assert not loaded, loaded\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_methods_lists_name_summary_distribution_version():
    rows = {r["name"]: r for r in cli_json("methods")}
    assert set(rows) >= BUILTINS
    assert rows["gradient-ascent"]["distribution"] == "mu-bench"
    assert rows["gradient-ascent"]["version"]
    assert "forget set" in rows["gradient-ascent"]["summary"]


def test_unknown_method_exits_2_with_valid_names_and_suggestion(home):
    proc = cli("submit", "fintune")
    assert proc.returncode == 2
    assert "Did you mean 'finetune'" in proc.stderr
    assert "Valid methods:" in proc.stderr and "gradient-ascent" in proc.stderr
    assert not home.exists()


def test_same_name_from_two_distributions_is_an_error_naming_both(monkeypatch):
    monkeypatch.syspath_prepend(plugin_path("duplicate").split(":")[0])
    with pytest.raises(UsageError) as err:
        registry.discover()
    assert "mu-bench-dupe" in str(err.value) and "mu-bench " in str(err.value)
    proc = cli("methods", plugins=("duplicate",))
    assert proc.returncode == 2 and "registered twice" in proc.stderr


def test_third_party_test_plugins_are_discovered(monkeypatch):
    monkeypatch.syspath_prepend(plugin_path("faults").split(":")[0])
    methods = registry.discover()
    assert methods["fault-chaos"].distribution == "mu-bench-faults"


def test_params_are_coerced_from_strings_and_validated():
    cls = registry.get("finetune").load()
    m = instantiate(cls, "finetune", parse_params(["lr=0.01", "epochs=3"]))
    assert (m.lr, m.epochs) == (0.01, 3)
    with pytest.raises(UsageError, match="no parameter 'lrr'.*Did you mean 'lr'.*Valid parameters"):
        instantiate(cls, "finetune", {"lrr": "0.1"})
    with pytest.raises(UsageError, match="'epochs'.*Valid parameters"):
        instantiate(cls, "finetune", {"epochs": "three"})
    with pytest.raises(UsageError, match="'lr'"):
        instantiate(cls, "finetune", {"lr": "-1"})
    with pytest.raises(UsageError, match="name=value"):
        parse_params(["lr"])


@pytest.mark.parametrize("param", ["lrr=0.1", "epochs=three"])
def test_cli_bad_param_exits_2_before_any_compute(param, home):
    proc = cli("submit", "finetune", "--param", param)
    assert proc.returncode == 2
    assert "Valid parameters" in proc.stderr
    assert not home.exists()
