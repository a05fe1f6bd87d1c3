"""A validation set methods may declare: held out of the training data before the
original model is trained, never the test set, handed only to methods that declare it
(`reads` with "validation"), checked through the real runner."""

from importlib import resources

import numpy as np
import pytest
import torch

from mu_bench.data import digits
from mu_bench.data.dataset import DataConfig
from mu_bench.data.heldout import carve
from mu_bench.errors import UsageError
from mu_bench.method import READ_SETS, read_sets
from mu_bench.scenario import load, parse
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan
from mu_bench.submission.prepare import prepare

from .conftest import PLUGINS, cli


def _rows(x: torch.Tensor) -> list[bytes]:
    return sorted(r.numpy().tobytes() for r in x.reshape(len(x), -1))


def test_carve_holds_out_a_share_of_each_class():
    labels = np.repeat(np.arange(3), [10, 20, 31])
    train, val = carve(labels, 0.1, seed=0)
    assert np.bincount(labels[val]).tolist() == [1, 2, 3]  # int(0.1 * n_c) per class
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    again, _ = carve(labels, 0.1, seed=0)
    other, _ = carve(labels, 0.1, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_digits_validation_is_carved_from_training_data_never_the_test_set():
    whole = digits.build_digits(DataConfig(dataset="digits"), 0)
    carved = digits.build_digits(
        DataConfig(dataset="digits", options={"validation_fraction": 0.1}), 0
    )
    assert whole.x_val is None  # absent unless the scenario asks
    assert carved.x_val is not None and carved.y_val is not None
    # Training and validation partition the same training part; the test set is untouched.
    assert _rows(torch.cat([carved.x_train, carved.x_val])) == _rows(whole.x_train)
    assert torch.equal(carved.x_test, whole.x_test) and torch.equal(carved.y_test, whole.y_test)
    assert len(carved.y_val) == sum(int(0.1 * (whole.y_train == c).sum()) for c in range(10))


def test_builtin_scenarios_hold_out_validation_before_training():
    art = prepare(load("digits-class3"), "cpu")
    assert art.validation is not None and len(art.validation) == 139
    assert len(art.train_set) + len(art.validation) == 1437
    # The original and gold models were trained on the rest: their one inference pass
    # covers exactly the training rows.
    assert len(art.original.outputs.train) == len(art.train_set) == 1298


def test_read_sets_cover_every_combination_and_reject_others():
    assert read_sets("both+validation") == {"forget", "retain", "validation"}
    assert read_sets("validation") == {"validation"} and read_sets("none") == set()
    assert len(set(READ_SETS.values())) == 8  # every subset of the three sets, once
    with pytest.raises(UsageError, match="'both\\+validation'"):
        read_sets("everything")


def test_validation_reaches_a_method_that_declares_it_through_the_real_runner(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS / "probes"))
    sub = plan("probe-validation", "digits-class3", seeds=1)
    report = run(sub, "cpu").report
    assert report.status == "ok", report.seeds[0].error
    got = report.seeds[0].metrics
    art = prepare(sub.scenario, "cpu")
    val, test = art.validation, art.data
    assert got["method.validation_rows"] == len(val) != len(test.y_test)
    assert got["method.validation_x_sum"] == pytest.approx(float(val.x.double().sum()))
    assert got["method.validation_y_sum"] == pytest.approx(float(val.y.double().sum()))
    assert got["method.validation_x_sum"] != pytest.approx(float(test.x_test.double().sum()))


@pytest.mark.parametrize("probe", ["probe-forget-only", "probe-retain-only"])
def test_validation_is_absent_unless_declared(probe, monkeypatch):
    """The scenario has a validation set; a method that does not declare it finds it
    nowhere (request.json, beside its inputs, the task)."""
    monkeypatch.syspath_prepend(str(PLUGINS / "probes"))
    sub = plan(probe, "digits-class3", seeds=1)
    assert prepare(sub.scenario, "cpu").validation is not None
    report = run(sub, "cpu").report
    assert report.status == "ok", report.seeds[0].error


def test_a_method_reading_validation_needs_a_scenario_with_one(tmp_path, home):
    text = (resources.files("mu_bench") / "scenarios" / "digits-class3.toml").read_text()
    toml = tmp_path / "no-val.toml"
    toml.write_text(text.replace("options = { validation_fraction = 0.1 }", ""))
    assert parse(toml.read_text(), "x").data.options == {}
    with pytest.raises(UsageError, match="reads a validation set.*has none"):
        plan("scrub-r", str(toml))
    proc = cli("submit", "scrub-r", "-s", str(toml), "-n", "1")
    assert proc.returncode == 2 and "validation_fraction" in proc.stderr
    assert not (home / "mlflow.db").exists()


def test_validation_fraction_is_validated():
    base = "name = 'x'\nsummary = 's'\n[forget]\nrule='class'\nclasses=[3]\n"
    rest = "[model]\narch='mlp'\n[train]\noptimizer='adam'\nlr=0.001\nepochs=1\nbatch_size=8\n"
    rest += "[budget]\nseconds=1\n"
    with pytest.raises(UsageError, match="validation_fraction"):
        parse(f"{base}[data]\ndataset='digits'\noptions={{validation_fraction=1.5}}\n{rest}", "x")
