"""Prepare: deterministic, cached, and a corrupted or partial entry is rebuilt, never used."""

import torch

from mu_bench.cache import Cache
from mu_bench.scenario import load
from mu_bench.submission.prepare import prepare

# The gold and original models only: the holdout gold set and LiRA's IN models have their
# own tests (test_scoring.py).
ONLY_GOLD = {"ceiling": False, "in_models": 0}


def test_prepare_is_cached_and_deterministic(tmp_path):
    scenario = load("digits-random10")
    first = prepare(scenario, "cpu", gold_seeds=2, **ONLY_GOLD, cache=Cache(tmp_path / "a"))
    again = prepare(scenario, "cpu", gold_seeds=2, **ONLY_GOLD, cache=Cache(tmp_path / "a"))
    elsewhere = prepare(scenario, "cpu", gold_seeds=2, **ONLY_GOLD, cache=Cache(tmp_path / "b"))
    assert not any(m.cache_hit for m in (first.original, *first.gold))
    assert all(m.cache_hit for m in (again.original, *again.gold))
    for x, y in zip(
        (first.original, *first.gold), (elsewhere.original, *elsewhere.gold), strict=True
    ):
        assert torch.equal(x.outputs.test, y.outputs.test)
    # gold models differ from each other and from the original
    assert not torch.equal(first.gold[0].outputs.test, first.gold[1].outputs.test)
    # more gold seeds train only the new ones
    more = prepare(scenario, "cpu", gold_seeds=3, **ONLY_GOLD, cache=Cache(tmp_path / "a"))
    assert [m.cache_hit for m in more.gold] == [True, True, False]


def test_gold_models_never_saw_the_forget_set_and_original_did(tmp_path):
    art = prepare(load("digits-class3"), "cpu", gold_seeds=2, **ONLY_GOLD, cache=Cache(tmp_path))
    f = art.split.forget_idx
    y = art.data.y_train[f]
    assert (art.original.outputs.train[f].argmax(1) == y).float().mean() > 0.9
    for g in art.gold:
        assert (g.outputs.train[f].argmax(1) == y).float().mean() < 0.05
    assert set(art.split.forget_idx.tolist()).isdisjoint(art.split.retain_idx.tolist())


def test_corrupt_or_partial_entries_are_rebuilt(tmp_path):
    scenario = load("digits-random10")
    cache = Cache(tmp_path)
    art = prepare(scenario, "cpu", gold_seeds=1, **ONLY_GOLD, cache=cache)
    weights = art.gold[0].weights
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    (art.original.weights.parent / "manifest.json").unlink()  # partial: no manifest
    rebuilt = prepare(scenario, "cpu", gold_seeds=1, **ONLY_GOLD, cache=cache)
    assert not rebuilt.gold[0].cache_hit and not rebuilt.original.cache_hit
    assert torch.equal(rebuilt.gold[0].outputs.test, art.gold[0].outputs.test)
    assert torch.load(rebuilt.gold[0].weights, weights_only=True)


def test_a_cache_hit_hashes_each_file_once(tmp_path, monkeypatch):
    """Every file a prepare uses is hashed (checked against its manifest) exactly once."""
    from collections import Counter

    from mu_bench import cache as cache_module

    scenario = load("digits-random10")
    cache = Cache(tmp_path)
    prepare(scenario, "cpu", gold_seeds=2, **ONLY_GOLD, cache=cache)
    hashed: Counter[str] = Counter()
    real = cache_module.sha256_file
    monkeypatch.setattr(
        cache_module, "sha256_file", lambda path: hashed.update([str(path)]) or real(path)
    )
    again = prepare(scenario, "cpu", gold_seeds=2, **ONLY_GOLD, cache=cache)
    assert all(m.cache_hit for m in (again.original, *again.gold))
    assert str(again.gold[1].weights) in hashed and str(again.original.weights) in hashed
    assert max(hashed.values()) == 1, hashed.most_common(3)
