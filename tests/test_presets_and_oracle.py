"""Per-setting presets (`Method.preset_for`: "<dataset>-<rule>" wins over "<dataset>") and
an oracle that is never silently truncated (`retrain` reports whether it ran its whole
recipe; its default budget follows the measured retrain time)."""

from typing import ClassVar

import pytest

from mu_bench import registry
from mu_bench.errors import UsageError
from mu_bench.method import Method
from mu_bench.scenario import load
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import budget_seconds, plan

CIFAR = {
    "cifar10-random10": "cifar10-random",
    "cifar10-random10-salun": "cifar10-random",
    "cifar10-class": "cifar10-class",
    "cifar10-class-salun": "cifar10-class",
    "cifar100-random10": "cifar100-random",
    "cifar100-random10-salun": "cifar100-random",
}


class _Toy(Method):
    presets: ClassVar[dict] = {"cifar10": {"lr": 1.0}, "cifar10-class": {"lr": 2.0}}
    lr: float = 0.5


def test_the_setting_key_wins_over_the_dataset_key():
    assert _Toy.preset_for("cifar10", "class") == ("cifar10-class", {"lr": 2.0})
    assert _Toy.preset_for("cifar10", "random") == ("cifar10", {"lr": 1.0})
    assert _Toy.preset_for("digits", "class") == (None, {})
    key, values = _Toy.preset_for("cifar10", "class")
    values["lr"] = 9.0  # a copy: the class's preset is untouched
    assert _Toy.presets["cifar10-class"] == {"lr": 2.0}


@pytest.mark.parametrize("scenario", sorted(CIFAR))
def test_every_builtin_plans_on_every_cifar_setting_with_that_settings_preset(scenario):
    """Each built-in's preset for the setting validates; the key `plan` reports is the
    setting's own when the method has one, else its dataset's or none."""
    setting = CIFAR[scenario]
    dataset = setting.split("-")[0]
    builtins = [n for n, e in registry.discover().items() if e.value.startswith("mu_bench.")]
    assert len(builtins) == 18  # the 17 founding methods and SCRUB+R
    for name in builtins:
        cls = registry.get(name).load()
        sub = plan(name, scenario)
        if setting in cls.presets:
            assert sub.preset == setting, name
            for k, v in cls.presets[setting].items():
                got = sub.params[k]
                assert (list(got) if isinstance(got, list | tuple) else got) == (
                    list(v) if isinstance(v, tuple) else v
                ), (name, k)
        else:
            assert sub.preset == (dataset if dataset in cls.presets else None), name


def test_published_settings_reach_the_methods():
    sub = plan("scissorhands", "cifar100-random10-salun")
    assert sub.preset == "cifar100-random"
    assert (sub.params["sparsity"], sub.params["lam"]) == (0.99, 1.0)
    assert (sub.params["reset_stages"], sub.params["project_stages"]) == (2, 3)
    assert plan("scrub", "cifar10-class").params["alpha"] == 0.001
    salun = plan("salun", "cifar100-random10").params
    assert (salun["lr"], salun["passes"]) == (5e-3, "shuffled")
    # Digits presets are fair-tuned, one per setting (dataset and forget rule).
    cf_k = registry.get("cf-k").load()
    digits = plan("cf-k", "digits-class3")
    tuned = cf_k.presets["digits-class"]
    assert digits.preset == "digits-class"
    assert {k: digits.params[k] for k in tuned} == tuned
    assert plan("gradient-ascent", "digits-random10").preset == "digits-random"


def test_a_method_default_budget_follows_the_retrain_time_and_the_user_wins():
    scenario = load("cifar10-random10-salun")  # its own budget: 300 s
    assert budget_seconds(None, scenario, 4000.0, "150%") == pytest.approx(6000.0)
    assert budget_seconds(None, scenario, 100.0, "150%") == 300.0  # never below the scenario's
    assert budget_seconds(None, scenario, 4000.0) == 300.0  # methods without one
    assert budget_seconds("20%", scenario, 4000.0, "150%") == pytest.approx(800.0)
    assert budget_seconds(12.0, scenario, 4000.0, "150%") == 12.0
    assert registry.get("retrain").load().default_budget == "150%"


def test_a_bad_default_budget_is_named(monkeypatch):
    """The method's declaration comes back from its sandboxed inspection as data; the
    harness checks it."""
    from mu_bench.isolation.protocol import MethodInfo
    from mu_bench.submission import plan as plan_module

    info = MethodInfo("noop", default_budget="soon")
    monkeypatch.setattr(plan_module, "describe_method", lambda *a, **k: info)
    with pytest.raises(UsageError, match="default_budget = 'soon'"):
        plan("noop", "digits-class3")


def test_retrain_reports_a_full_run_and_a_truncated_one():
    full = run(plan("retrain", "digits-class3", seeds=2), "cpu").report
    assert full.status == "ok"
    assert full.budget_seconds >= load("digits-class3").budget.seconds
    m = full.metrics
    assert (m["method.truncated"], m["method.epochs_completed"], m["method.epochs"]) == (0, 30, 30)
    assert not any("stopped at the budget" in n for n in full.notes)

    cut = run(plan("retrain", "digits-class3", seeds=1, budget="0.05"), "cpu", grace=2.0).report
    seed = cut.seeds[0]
    # Stopping at the budget overruns it by the last step: a timeout, not scored, but what
    # retrain says it did stays on the seed and in the notes.
    assert seed.status in ("ok", "timeout"), seed.error
    assert seed.metrics["method.truncated"] == 1
    assert seed.metrics["method.epochs_completed"] < 30
    done = int(seed.metrics["method.epochs_completed"])
    assert f"retrain stopped at the budget after {done} of 30 epochs (seed 0): not the oracle" in (
        cut.notes
    )
