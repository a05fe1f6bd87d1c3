"""Prepare a scenario: the original model and the gold models, trained once and cached.

The original model trains on the whole training set; each gold model retrains from
scratch on the retain set only, with the same recipe and its own seed from the `gold`
stream. When the scenario asks, prepare also trains a second, independent set of gold
models (`[gold] ceiling`, stream `gold-holdout`: the forget-quality ceiling scores one
set against the other) and LiRA's IN models (`[lira] in_models`: replicas of the
original with seeds 1..M of the `original` stream, so scenarios that share data, model
and recipe share them too). Each model is its own cache entry keyed by a content hash
of the sections that determine it plus `CACHE_VERSION`, so raising `gold.seeds` trains
only the new models and a second `prepare` is a cache hit. Each entry stores the
weights, the logits of one inference pass over the training and test sets, and the
training time (the gold models' median is the `retrain_seconds` every speed-up is
measured against).
Digits: about 1 s per model on two CPU cores (original + 16 gold + 16 holdout + 16 IN
models, about a minute, once).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from .cache import Cache, key_of
from .datasets import Dataset, build_dataset
from .device import resolve_device, synchronize
from .models import ModelSpec, build_model, spec_for
from .paths import cache_root
from .scenario import Scenario
from .seeding import derive_seed
from .splits import ForgetSplit, make_split
from .task import Split
from .training import fit, predict_logits, warm_up

# Bump when a change to data, split, model or training code changes trained weights.
CACHE_VERSION = "1"


@dataclass(frozen=True)
class ModelOutputs:
    """Logits of one model from a single inference pass: every metric starts here."""

    train: torch.Tensor  # (n_train, classes), float32; forget and retain rows by index
    test: torch.Tensor  # (n_test, classes)


@dataclass(frozen=True)
class TrainedModel:
    role: str  # "original", "gold", "gold-holdout" or "in" (LiRA's IN models)
    index: int
    weights: Path
    outputs: ModelOutputs
    train_seconds: float
    cache_hit: bool
    key: str = ""  # its cache key (keys its cached metrics)


@dataclass(frozen=True)
class Artifacts:
    scenario: Scenario
    data: Dataset
    split: ForgetSplit
    spec: ModelSpec
    original: TrainedModel
    gold: tuple[TrainedModel, ...]
    # A second, independent set of gold models (`[gold] ceiling`), and LiRA's IN models.
    gold_holdout: tuple[TrainedModel, ...] = ()
    in_models: tuple[TrainedModel, ...] = ()
    cache: Cache | None = None  # where per-model reference metrics are cached

    @property
    def retrain_seconds(self) -> float:
        return statistics.median(m.train_seconds for m in self.gold)

    @cached_property
    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(kept, forgotten) test indices: with class forgetting the forgotten classes' test
        images are scored apart (SalUn drops them from TA); otherwise all are kept."""
        y = self.data.y_test
        if self.scenario.forget.rule != "class":
            return torch.arange(len(y)), torch.arange(0)
        gone = torch.isin(y, torch.tensor(self.scenario.forget.classes))
        return torch.nonzero(~gone).flatten(), torch.nonzero(gone).flatten()

    @cached_property
    def forget(self) -> Split:
        return Split(
            self.data.x_train[self.split.forget_idx],
            self.data.y_train[self.split.forget_idx],
            self.scenario.train.augment,
        )

    @cached_property
    def retain(self) -> Split:
        return Split(
            self.data.x_train[self.split.retain_idx],
            self.data.y_train[self.split.retain_idx],
            self.scenario.train.augment,
        )


def init_seed(scenario: Scenario, role: str, index: int) -> int:
    """The seed a model of `role` ("original" or "gold") number `index` is initialised and
    shuffled with: `torch.manual_seed(seed)` before `build_model` gives its initial weights."""
    return derive_seed(scenario.seed, role, index)


def _key(
    scenario: Scenario, role: str, index: int, data_fingerprint: str = "", device: str = "cpu"
) -> str:
    sections = (
        ("data", "model", "train") if role == "original" else ("data", "forget", "model", "train")
    )
    payload = {"s": scenario.section_hash(*sections), "role": role, "i": index, "v": CACHE_VERSION}
    # Files the scenario does not pin (no known checksums) key by their contents; a model
    # trained on a GPU (mixed precision, GPU timings) is not the CPU one. Both are added
    # only when set, so existing CPU keys stay valid.
    if data_fingerprint:
        payload["data"] = data_fingerprint
    if torch.device(device).type != "cpu":
        payload["device"] = torch.device(device).type
    return key_of(payload)


def _trainer(scenario, spec, data: Dataset, train_set: Split, seed: int, device: str):
    def build(tmp: Path) -> dict:
        torch.manual_seed(seed)
        model = build_model(spec).to(device)
        generator = torch.Generator().manual_seed(seed)
        on_device = train_set.to(device)
        warm_up()
        synchronize(device)
        start = time.perf_counter()
        fit(model, on_device, scenario.train, generator=generator)
        synchronize(device)
        seconds = time.perf_counter() - start
        torch.save(model.state_dict(), tmp / "weights.pt")
        outputs = {
            "train": predict_logits(model, data.x_train),
            "test": predict_logits(model, data.x_test),
        }
        torch.save(outputs, tmp / "outputs.pt")
        return {
            "train_seconds": seconds,
            "seed": seed,
            "device": device,
            "torch": torch.__version__,
        }

    return build


def _load(entry, role: str, index: int, key: str = "") -> TrainedModel:
    outputs = torch.load(entry.file("outputs.pt"), weights_only=True)
    return TrainedModel(
        role,
        index,
        entry.file("weights.pt"),
        ModelOutputs(outputs["train"], outputs["test"]),
        float(entry.meta["train_seconds"]),
        cache_hit=not entry.built,
        key=key,
    )


def prepare(
    scenario: Scenario,
    device: str = "auto",
    *,
    gold_seeds: int | None = None,
    ceiling: bool | None = None,
    in_models: int | None = None,
    on_model: Callable[[TrainedModel], None] | None = None,
    cache: Cache | None = None,
) -> Artifacts:
    """Build (or load from the cache) everything a submission is scored against.

    `gold_seeds`, `ceiling` and `in_models` override the scenario's counts."""
    device = resolve_device(device)
    cache = cache or Cache(cache_root())
    data = build_dataset(scenario)
    split = make_split(scenario, data)
    spec = spec_for(scenario, data.input_shape, data.num_classes)
    full = Split(data.x_train, data.y_train, scenario.train.augment)
    retain = Split(
        data.x_train[split.retain_idx], data.y_train[split.retain_idx], scenario.train.augment
    )

    def one(role: str, index: int, train_set: Split, label: str | None = None) -> TrainedModel:
        seed = init_seed(scenario, role, index)
        key = _key(scenario, role, index, data.fingerprint, device)
        entry = cache.get_or_build(
            "models", key, _trainer(scenario, spec, data, train_set, seed, device)
        )
        model = _load(entry, label or role, index, key)
        if on_model:
            on_model(model)
        return model

    original = one("original", 0, full)
    n_gold = scenario.gold.seeds if gold_seeds is None else gold_seeds
    gold = tuple(one("gold", k, retain) for k in range(n_gold))
    with_ceiling = scenario.gold.ceiling if ceiling is None else ceiling
    holdout = tuple(one("gold-holdout", k, retain) for k in range(n_gold if with_ceiling else 0))
    n_in = scenario.lira.in_models if in_models is None else in_models
    ins = tuple(one("original", k, full, label="in") for k in range(1, n_in + 1))
    return Artifacts(scenario, data, split, spec, original, gold, holdout, ins, cache)
