"""Prepare trains the gold, holdout and IN models batched (all but the original and gold
model 0, which train alone); the trainer is part of each model's cache key, and
`retrain_seconds` is the time of gold model 0 trained alone."""

import torch

from mu_bench.cache import Cache
from mu_bench.scenario import load
from mu_bench.submission import prepare as prepare_stage
from mu_bench.submission.prepare import _key, prepare, trainer_for


def _short(name: str):
    base = load(name)  # a 2-epoch recipe: which trainer ran, not the models, matters here
    return base.model_copy(update={"train": base.train.model_copy(update={"epochs": 2})})


def test_all_but_the_original_and_gold_0_train_at_once(tmp_path, monkeypatch):
    runs: list[int] = []
    real = prepare_stage.train_batched

    def counting(spec, data, recipe, seeds, **kw):
        runs.append(len(seeds))
        return real(spec, data, recipe, seeds, **kw)

    monkeypatch.setattr(prepare_stage, "train_batched", counting)
    scenario = _short("digits-random10")
    cache = Cache(tmp_path)
    art = prepare(scenario, "cpu", gold_seeds=3, ceiling=True, in_models=2, cache=cache)
    # one run on the full set (2 IN models), one on the retain set (gold 1-2, holdout 0-2)
    assert sorted(runs) == [2, 5]
    assert art.original.trainer == art.gold[0].trainer == "sequential"
    stacked = (*art.gold[1:], *art.gold_holdout, *art.in_models)
    assert all(m.trainer == "stacked" for m in stacked)
    assert art.retrain_seconds == art.gold[0].train_seconds
    # the trainer keys the cache: a stacked gold 1 is not the sequential one
    assert art.gold[1].key == _key(scenario, "gold", 1, art.data.fingerprint, "cpu", "stacked")
    assert art.gold[1].key != _key(scenario, "gold", 1, art.data.fingerprint, "cpu")
    assert art.gold[0].key == _key(scenario, "gold", 0, art.data.fingerprint, "cpu")
    # distinct seeds, distinct models, trained on the retain set only
    outs = [m.outputs.test for m in (*art.gold, *art.gold_holdout)]
    assert not any(torch.equal(a, b) for i, a in enumerate(outs) for b in outs[i + 1 :])
    runs.clear()
    again = prepare(scenario, "cpu", gold_seeds=3, ceiling=True, in_models=2, cache=cache)
    assert runs == [] and all(m.cache_hit for m in again.models)


def test_architectures_without_a_stacked_path_train_one_by_one():
    from mu_bench.models.spec import ModelSpec

    resnet = ModelSpec("resnet18", {"width": 8}, (3, 32, 32), 10)
    assert trainer_for("gold", 3, resnet, "cpu") == "sequential"
    mlp = ModelSpec("mlp", {"hidden": [8]}, (64,), 10)
    assert trainer_for("gold", 3, mlp, "cpu") == "stacked"
    assert trainer_for("gold", 3, mlp, "cuda") == "sequential"
    assert trainer_for("original", 0, mlp, "cpu") == trainer_for("gold", 0, mlp, "cpu")
    assert trainer_for("original", 1, mlp, "cpu") == "stacked"  # a LiRA IN model
