"""Fair tuning (`mu-bench tune`): the tuning forget set is another draw, the evaluation
forget set and its gold models are never touched, the preset it writes is what
`submit --preset` runs and the board says where the parameters came from, and bad
input exits 2 having written nothing. On a tiny digits scenario (two gold models, three
epochs), a few trials of one seed: about a minute in all on two idle cores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mu_bench.cache import Cache
from mu_bench.data.forget import ForgetConfig, drawn_classes, make_split
from mu_bench.data.registry import build_dataset
from mu_bench.errors import UsageError
from mu_bench.leaderboard import ranking, render
from mu_bench.scenario import load
from mu_bench.seeding import derive_seed
from mu_bench.submission import prepare as prepare_module
from mu_bench.submission import presets
from mu_bench.submission import tune as tuning
from mu_bench.submission.plan import plan

from .conftest import cli, cli_json

TINY = """
name = "digits-tune-tiny"
summary = "digit 3 forgotten; a small MLP, 2 gold models (the tuning tests)"
seed = 0
[data]
dataset = "digits"
test_fraction = 0.2
[forget]
rule = "class"
classes = [3]
[model]
arch = "mlp"
hidden = [32]
[train]
optimizer = "adam"
lr = 3e-3
epochs = 3
batch_size = 64
[gold]
seeds = 2
[budget]
seconds = 20
[submit]
seeds = 2
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenario") / "digits-tune-tiny.toml"
    path.write_text(TINY)
    return path


# ---------------------------------------------------------------------- forget draws


def test_draw_zero_is_the_old_forget_set_and_keeps_its_keys():
    scenario = load("digits-random10")
    data = build_dataset(scenario.data, scenario.seed)
    n = len(data.y_train)
    k = int(round(scenario.forget.fraction * n))
    rng = np.random.default_rng(derive_seed(scenario.seed, "forget-set"))
    old = np.sort(rng.permutation(n)[:k])
    split = make_split(scenario.forget, scenario.seed, data)
    assert np.array_equal(split.forget_idx.numpy(), old)
    assert "draw" not in scenario.forget.model_dump(mode="json")  # hashes unchanged


def test_tuning_draws_are_disjoint_from_the_evaluation_set():
    for name in ("digits-random10", "digits-class3"):
        scenario = load(name)
        data = build_dataset(scenario.data, scenario.seed)
        sets = [
            set(make_split(tuning.tuning_scenario(scenario, d).forget, 0, data).forget_idx.tolist())
            if d
            else set(make_split(scenario.forget, 0, data).forget_idx.tolist())
            for d in range(3)
        ]
        assert all(len(s) == len(sets[0]) or scenario.forget.rule == "class" for s in sets)
        for i in range(3):
            for j in range(i + 1, 3):
                assert not sets[i] & sets[j], (name, i, j)
    assert drawn_classes(ForgetConfig(rule="class", classes=(3,), draw=1), 10) == (4,)
    assert drawn_classes(ForgetConfig(rule="class", classes=(9,), draw=1), 10) == (0,)
    assert drawn_classes(ForgetConfig(rule="class", classes=(1, 2), draw=1), 10) == (3, 4)
    with pytest.raises(UsageError, match="impossible"):
        drawn_classes(ForgetConfig(rule="class", classes=(3,), draw=10), 10)


# ---------------------------------------------------------------------- never read


def test_tune_never_touches_the_evaluation_forget_set_or_its_gold_models(tiny, monkeypatch):
    """Every split prepare draws and every cache entry opened during `tune` is counted:
    none is the evaluation set's (draw 0) or one of its gold models; the same counters
    do see them when the evaluation scenario itself is prepared."""
    scenario = load(str(tiny))
    data = build_dataset(scenario.data, scenario.seed)
    eval_gold = {
        prepare_module._key(scenario, role, k, data.fingerprint, "cpu")
        for role in ("gold", "gold-holdout")
        for k in range(4)
    }
    splits, opened = [], []
    real_split, real_get, real_build = make_split, Cache.get, Cache.get_or_build

    def counting_split(config, seed, data):
        splits.append(config)
        return real_split(config, seed, data)

    def counting_get(self, kind, key):
        opened.append(key)
        return real_get(self, kind, key)

    def counting_build(self, kind, key, build):
        opened.append(key)
        return real_build(self, kind, key, build)

    monkeypatch.setattr(prepare_module, "make_split", counting_split)
    monkeypatch.setattr(Cache, "get", counting_get)
    monkeypatch.setattr(Cache, "get_or_build", counting_build)

    req = tuning.plan_tune(
        "finetune", str(tiny), 3, space={"lr": "log:0.01:0.3", "epochs": "int:1:3"}, seeds=1
    )
    doc = tuning.tune(req, "cpu")
    assert splits and all(c.draw == 1 for c in splits)
    assert not eval_gold & set(opened)
    tuning_gold = set(doc["provenance"]["tuning_set"]["gold_models"])
    assert len(tuning_gold) == 2 and tuning_gold <= set(opened)
    prov = doc["provenance"]
    assert prov["tuning_set"]["classes"] == [4]
    assert prov["evaluation_set"] == {
        "scenario_hash": scenario.content_hash,
        "forget": "class [3]",
        "read": False,
    }
    assert prov["trials"] == 3 and len(doc["trials"]) == 3
    best = min(t["value"] for t in doc["trials"] if t["value"] is not None)
    assert prov["objective"] == {"metric": "avg_gap", "direction": "minimize", "best": best}
    assert set(doc["params"]) == {"lr", "epochs"}

    # The counters are live: preparing the evaluation scenario does read those entries.
    splits.clear()
    opened.clear()
    prepare_module.prepare(scenario, "cpu", in_models=0)
    assert any(c.draw == 0 for c in splits)
    assert eval_gold & set(opened)


# ---------------------------------------------------------------------- preset -> board


@pytest.mark.slow
def test_the_tuned_preset_is_what_submit_runs_and_the_board_names_it(tiny, tmp_path):
    out = tmp_path / "ft.json"
    tuned = cli_json(
        "tune", "finetune", "--scenario", str(tiny), "--trials", "2", "--seeds", "1",
        "--space", "lr=log:0.01:0.3", "--param", "epochs=2", "--out", str(out),
    )  # fmt: skip
    doc = json.loads(out.read_text())
    assert tuned["path"] == str(out) and doc["params"] == tuned["params"]
    assert doc["params"]["epochs"] == 2 and 0.01 <= doc["params"]["lr"] <= 0.3
    uri = f"sqlite:///{tmp_path / 'board.db'}"
    report = cli_json(
        "submit", "finetune", "--scenario", str(tiny), "--seeds", "2", "--preset", str(out),
        "--tracking-uri", uri, "--no-figures",
    )  # fmt: skip
    assert report["params"]["lr"] == doc["params"]["lr"] and report["params"]["epochs"] == 2
    assert report["params_source"] == "fair-tuning"
    assert report["params_provenance"]["study"] == doc["provenance"]["study"]
    table = ranking.table(ranking.load(uri, "digits-tune-tiny"))  # what `leaderboard` prints
    (row,) = render.records(table)
    assert row["params_from"] == "fair-tuning"
    assert row["params_provenance"]["study"] == doc["provenance"]["study"]
    assert row["params_provenance"]["tuning_set"] == "class [3], draw 1"
    assert render.board_rows(table).rows[0]["params"] == "tuned"
    assert render.board_rows(table, wide=True).rows[0]["from"] == "tuned"


def test_params_source_of_defaults_presets_and_user_values():
    assert plan("finetune", "digits-class3", use_preset=False).params_source == "defaults"
    assert plan("noop", "digits-class3").params_source == "defaults"
    assert plan("random-label", "digits-class3").params_source == "fair-tuning"
    # a paper's published setting (no digits preset is hand-picked any more)
    assert plan("scissorhands", "cifar100-random10-salun").params_source == "preset"
    user = plan("finetune", "digits-class3", params={"epochs": "3"}, use_preset=False)
    assert user.params_source == "user"


def test_builtin_fair_presets_match_their_provenance():
    """Each preset a built-in says fair tuning derived is the best trial of its shipped
    study, tuned on another draw of that scenario's forget set."""
    from mu_bench import registry

    found = 0
    builtins = [e for e in registry.discover().values() if e.value.startswith("mu_bench.methods.")]
    for entry in builtins:
        name, cls = entry.name, entry.load()
        for key, source in cls.preset_sources.items():
            doc = presets.load_builtin(source)
            prov = doc["provenance"]
            assert doc["method"] == name and cls.presets[key] == doc["params"]
            assert prov["source"] == "fair-tuning" and prov["evaluation_set"]["read"] is False
            scenario = load(prov["scenario"])
            assert prov["evaluation_set"]["scenario_hash"] == scenario.content_hash
            assert prov["tuning_set"]["scenario_hash"] != scenario.content_hash
            assert f"{scenario.data.dataset}-{scenario.forget.rule}" == key
            sub = plan(name, scenario.name)
            assert sub.params_source == "fair-tuning" and sub.provenance == prov
            found += 1
    # Every built-in with a digits preset has one fair-tuned preset per digits scenario of
    # its scope: no hand-picked digits preset is left.
    assert found == 26
    for entry in builtins:
        hand_picked = [k for k in entry.load().presets if k.startswith("digits")]
        assert set(hand_picked) <= set(entry.load().preset_sources), (entry.name, hand_picked)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"method": "nope"}, "Valid methods"),
        ({"space": {"lr": "log:0:1"}}, "LOW > 0 for log"),
        ({"space": {"lr": "normal:0:1"}}, "is not valid: give float:"),
        ({"space": {"lr": "int:1"}}, "is not valid: give float:"),
        ({"space": {"batch_size": "choice:"}}, "is not valid: give float:"),
        ({"space": {"rate": "log:0.01:1"}}, "Valid parameters"),
        ({"space": {"epochs": "int:0:3"}}, "greater than or equal to 1"),
        ({"method": "noop"}, "declares no search_space"),
        ({"objective": "speed"}, "valid are avg_gap, score_norm"),
        ({"objective": "score_norm", "seeds": 1}, "at least 2"),
        ({"trials": 0}, "at least 1"),
        ({"draw": 0}, "draw 0 is the evaluation set"),
        ({"space": {"lr": "log:0.01:1"}, "fixed": {"lr": "0.1"}}, "both searched"),
        ({"fixed": {"momentum": "many"}}, "bad parameter"),
    ],
)
def test_bad_tune_requests_are_refused_before_any_compute(kwargs, fragment):
    args = {"method": "finetune", "scenario_ref": "digits-class3", "trials": 2, **kwargs}
    with pytest.raises(UsageError, match=fragment):
        tuning.plan_tune(args.pop("method"), args.pop("scenario_ref"), args.pop("trials"), **args)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["tune", "nope"], "Valid methods"),
        (["tune", "finetune", "--space", "lr=log:0:1"], "LOW > 0 for log"),
        (["submit", "noop", "--preset", "finetune-digits-class3"], "is for method 'finetune'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(args, fragment, home, tmp_path):
    cache = tmp_path / "cache"  # its own: the session's is written by parallel tests
    proc = cli(*args, env={"MU_BENCH_CACHE": str(cache)})
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not home.exists() and not cache.exists()


def test_bad_preset_references_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown preset"):
        plan("finetune", "digits-class3", preset_file="no-such-preset")
    with pytest.raises(UsageError, match="does not exist"):
        plan("finetune", "digits-class3", preset_file=str(tmp_path / "x.json"))
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(UsageError, match="not a mu-bench preset"):
        plan("finetune", "digits-class3", preset_file=str(tmp_path / "bad.json"))
    doc = presets.load_builtin("finetune-digits-class3")
    tuned_here = {
        **doc["provenance"],
        "tuning_set": {"scenario_hash": load("digits-class3").content_hash},
    }
    (tmp_path / "here.json").write_text(json.dumps({**doc, "provenance": tuned_here}))
    with pytest.raises(UsageError, match="tuned on this scenario's own forget set"):
        plan("finetune", "digits-class3", preset_file=str(tmp_path / "here.json"))
