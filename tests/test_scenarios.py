"""Scenario files: built-ins load and validate; malformed files get clear messages."""

import pytest

from mu_bench.errors import UsageError
from mu_bench.scenario import builtin_names, load, parse

from .conftest import cli, cli_json

VALID = """
name = "tiny"
summary = "a test scenario"
[data]
dataset = "digits"
[forget]
rule = "random"
fraction = 0.1
[model]
arch = "mlp"
hidden = [16]
[train]
lr = 0.01
epochs = 2
batch_size = 64
[budget]
seconds = 5
"""


def test_builtins_load_and_match_their_file_names():
    names = builtin_names()
    assert {"digits-random10", "digits-class3"} <= set(names)
    for name in names:
        assert load(name).name == name


def test_default_scenario_forgets_ten_percent_at_random():
    s = load("digits-random10")
    assert (s.forget.rule, s.forget.fraction) == ("random", 0.1)
    assert load("digits-class3").forget.classes == (3,)


def test_content_hash_ignores_name_but_not_recipe():
    a = parse(VALID, "a")
    b = parse(VALID.replace('name = "tiny"', 'name = "other"'), "b")
    c = parse(VALID.replace("lr = 0.01", "lr = 0.02"), "c")
    assert a.content_hash == b.content_hash != c.content_hash


@pytest.mark.parametrize(
    "change, expected",
    [
        (("epochs = 2", "epochs = 2\nepochz = 3"), ["unknown key 'train.epochz'", "epochs"]),
        (("lr = 0.01", 'lr = "fast"'), ["'train.lr'"]),
        (("lr = 0.01", "lr = -1"), ["'train.lr'", "greater than 0"]),
        (('dataset = "digits"', 'dataset = "digitz"'), ["unknown dataset 'digitz'", "digits"]),
        (('arch = "mlp"', 'arch = "mpl"'), ["unknown architecture 'mpl'", "Did you mean 'mlp'"]),
        (("hidden = [16]", "hiden = [16]"), ["unknown key 'hiden'", "hidden"]),
        (("fraction = 0.1", "classes = [3]"), ["rule 'random' takes exactly one of"]),
        (("[budget]\nseconds = 5", ""), ["missing required key 'budget'"]),
        (('rule = "random"', 'rule = "randm"'), ["'forget.rule'", "random", "class"]),
        (("[data]", "[data"), ["not valid TOML"]),
    ],
)
def test_malformed_scenario_names_file_key_and_allowed(change, expected):
    with pytest.raises(UsageError) as err:
        parse(VALID.replace(*change), "my.toml")
    message = str(err.value)
    assert "my.toml" in message
    for fragment in expected:
        assert fragment in message


def test_unknown_scenario_suggests_and_lists():
    with pytest.raises(UsageError, match="Did you mean 'digits-class3'.*Valid scenarios"):
        load("digits-clas3")


def test_scenario_file_by_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(VALID)
    assert load(str(path)).name == "tiny"


def test_cli_lists_scenarios_with_summary():
    rows = cli_json("scenarios")
    names = {r["name"]: r for r in rows}
    assert names["digits-random10"]["default"] is True
    assert "digit 3" in names["digits-class3"]["summary"]


def test_cli_malformed_scenario_exits_2_and_writes_nothing(tmp_path, home):
    bad = tmp_path / "bad.toml"
    bad.write_text(VALID.replace("epochs = 2", "epochs = 0"))
    proc = cli("submit", "noop", "--scenario", str(bad))
    assert proc.returncode == 2
    assert "bad.toml" in proc.stderr and "train.epochs" in proc.stderr
    assert not home.exists()
