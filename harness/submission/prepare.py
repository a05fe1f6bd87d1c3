"""Prepare a scenario: its data and forget split, the original model and the gold models,
trained once and cached, and the reference values every submission is scored against.

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
measured against). Then the reference (`evaluation.scoring.Reference`): each prepared
model's metrics, the gold models' forget accuracies under the relearning attack (where
`[relearn] steps` is set), and the pooled ceiling at the N of a default submission (mean
and spread, `evaluation.ceiling.pooled_ceiling` over gold and holdout models), each
cached beside the models (keyed by `METRICS_VERSION`).

Batched: every model but the original and gold model 0 is trained with the others of its
training set at once (`toolkit.batched_training.train_batched`, the stacked path) where
the architecture has one on the CPU (`trainer_for`); those models' cache keys say
`trainer = "stacked"` (their weights equal sequential training's to a tolerance), and
their `train_seconds` is their share of the run. Gold model 0 trains alone: its time is
`retrain_seconds`. Digits: about 1 s per model one by one on two quiet CPU cores; the
digits scenarios' original + 32 gold + 32 holdout + 32 IN models take about as long as
1 + 24 one by one (34 s, benchmarks/batched_training.py), once; a cache hit takes a
fraction of a second.
A small generated dataset (digits, MNIST-1D: `DatasetBuilder.cacheable`) is cached
too, so that a cache hit builds nothing and imports no builder (scikit-learn for
digits, 1.5 s of the 1.6 s a digits cache hit took). The forget split is computed each
time: NumPy on the training labels, under a millisecond.
"""

from __future__ import annotations

import io
import logging
import shutil
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache import Cache
from ..data import registry as data_registry
from ..data.dataset import Dataset
from ..data.forget import ForgetSplit, make_split
from ..data.registry import build_dataset, cacheable
from ..data.split import Split
from ..device import resolve_device
from ..evaluation.ceiling import pooled_ceiling
from ..evaluation.inference import ModelOutputs, infer, returned_weights, weights_cap
from ..evaluation.relearning import relearn_metrics
from ..evaluation.scoring import (
    CEILING_PAIRS,
    Reference,
    forget_confidences,
    forget_margins,
    model_metrics,
)
from ..hashing import key_of
from ..isolation.executor import Executor
from ..isolation.pool import threads_per_job
from ..isolation.protocol import INPUTS, LOGITS, OUTPUT, Job, Limits, Outcome, TrainModelRequest
from ..isolation.untrusted import read_output
from ..models.registry import spec_for
from ..models.spec import ModelSpec
from ..paths import cache_root, work_root
from ..scenario import Scenario
from ..seeding import derive_seed
from ..toolkit.batched_training import stacked_unsupported, train_batched
from ..toolkit.scratch import train_from_scratch

# Bump when a change to data, split, model or training code changes trained weights.
CACHE_VERSION = "1"
# Bump when a metric's definition changes: keys the cached reference metrics.
METRICS_VERSION = "2"
# A model job's limit: harness code does not hang, but a machine may be slow (the
# SalUn CIFAR recipe is 182 epochs of ResNet-18).
TRAIN_MODEL_LIMIT = 24 * 3600.0

log = logging.getLogger("mu_bench")


@dataclass(frozen=True)
class TrainedModel:
    role: str  # "original", "gold", "gold-holdout" or "in" (LiRA's IN models)
    index: int
    weights: Path
    outputs: ModelOutputs
    train_seconds: float
    cache_hit: bool
    key: str  # its cache key (keys its cached metrics)
    trainer: str = "sequential"  # or "stacked": trained with others at once


@dataclass(frozen=True)
class Artifacts:
    scenario: Scenario
    data: Dataset
    split: ForgetSplit
    spec: ModelSpec
    original: TrainedModel
    gold: tuple[TrainedModel, ...]
    # A second, independent set of gold models (`[gold] ceiling`), and LiRA's IN models.
    gold_holdout: tuple[TrainedModel, ...]
    in_models: tuple[TrainedModel, ...]
    reference: Reference

    @property
    def retrain_seconds(self) -> float:
        """The time of one gold model trained alone (gold 0 always is): what every
        speed-up is measured against, however the other models were trained."""
        alone = [m.train_seconds for m in self.gold if m.trainer == "sequential"]
        return statistics.median(alone or [m.train_seconds for m in self.gold])

    @property
    def models(self) -> tuple[TrainedModel, ...]:
        return (self.original, *self.gold, *self.gold_holdout, *self.in_models)

    @cached_property
    def forget(self) -> Split:
        return self.train_set.subset(self.split.forget_idx)

    @cached_property
    def retain(self) -> Split:
        return self.train_set.subset(self.split.retain_idx)

    @cached_property
    def validation(self) -> Split | None:
        """The scenario's validation set (held out of the training data), if it has one."""
        if self.data.x_val is None or self.data.y_val is None:
            return None
        return Split(self.data.x_val, self.data.y_val, self.scenario.train.augment)

    @cached_property
    def train_set(self) -> Split:
        return Split(self.data.x_train, self.data.y_train, self.scenario.train.augment)


def init_seed(scenario: Scenario, role: str, index: int) -> int:
    """The seed a model of `role` ("original" or "gold") number `index` is initialised and
    shuffled with: `torch.manual_seed(seed)` before `build_model` gives its initial weights."""
    return derive_seed(scenario.seed, role, index)


def relearn_seed(scenario: Scenario) -> int:
    """The relearning attack's seed (its forget slice and batches): one per scenario, so
    every model of a scenario, gold or submitted, is attacked the same way."""
    return derive_seed(scenario.seed, "relearn")


def gold_relearning(
    scenario: Scenario,
    spec: ModelSpec,
    data: Dataset,
    split: ForgetSplit,
    cache: Cache,
    gold: tuple[TrainedModel, ...],
    device: str,
) -> list[dict[str, float]]:
    """Each gold model's forget accuracies under the relearning attack (the reference a
    submission's are compared with), cached per model; empty dicts when it is off."""
    steps = scenario.relearn.steps
    if not steps:
        return [{} for _ in gold]
    train_set = Split(data.x_train, data.y_train, scenario.train.augment)
    retain = train_set.subset(split.retain_idx)
    forget = train_set.subset(split.forget_idx)

    def attack(m: TrainedModel) -> dict[str, float]:
        state = torch.load(m.weights, map_location="cpu", weights_only=True)
        return relearn_metrics(
            state,
            spec,
            retain,
            forget,
            scenario.train,
            steps=steps,
            slice_fraction=scenario.relearn.slice_fraction,
            seed=relearn_seed(scenario),
            device=device,
        )

    split_hash = scenario.section_hash("data", "forget", "relearn")
    return [
        _cached(cache, {"relearn": m.key, "split": split_hash}, lambda m=m: attack(m)) for m in gold
    ]


def mia_seed(scenario: Scenario) -> int:
    """The loss attack's subsampling seed: one per scenario, the same for every model."""
    return derive_seed(scenario.seed, "mia-subsample")


def trainer_for(role: str, index: int, spec: ModelSpec, device: str) -> str:
    """How model `index` of `role` is trained: "stacked" (with the scenario's other
    stacked models at once, `toolkit.batched_training`) where the architecture allows on
    the CPU, except the original and gold model 0, which train alone ("sequential"): the
    models methods start from, and the one whose time is `retrain_seconds`."""
    if role == "original" and index == 0 or role == "gold" and index == 0:
        return "sequential"
    return "sequential" if stacked_unsupported(spec, device) else "stacked"


def _key(
    scenario: Scenario,
    role: str,
    index: int,
    data_fingerprint: str = "",
    device: str = "cpu",
    trainer: str = "sequential",
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
    if trainer != "sequential":  # batched weights equal sequential ones only to a tolerance
        payload["trainer"] = trainer
    return key_of(payload)


def _trainer(scenario: Scenario, spec, data: Dataset, train_set: Split, seed: int, device: str):
    def build(tmp: Path) -> dict:
        # With the threads a worker gets, so a model is the same trained here or by a job.
        threads = threads_per_job(device)
        model, seconds = train_from_scratch(spec, train_set, scenario.train, seed, device, threads)
        torch.save(model.state_dict(), tmp / "weights.pt")
        outputs = infer(model, data)
        torch.save({"train": outputs.train, "test": outputs.test}, tmp / "outputs.pt")
        return {
            "train_seconds": seconds,
            "seed": seed,
            "device": device,
            "torch": torch.__version__,
        }

    return build


def _dataset(scenario: Scenario, cache: Cache) -> Dataset:
    """The scenario's dataset: built, or for a cacheable one loaded from the cache."""
    if not cacheable(scenario.data):
        return build_dataset(scenario.data, scenario.seed)

    def build(tmp: Path) -> dict:
        data = build_dataset(scenario.data, scenario.seed)
        assert not data.fingerprint and data.draw_forget is None  # all there is to keep
        names = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")  # val: may be None
        tensors = {k: getattr(data, k) for k in names if getattr(data, k) is not None}
        torch.save(tensors, tmp / "dataset.pt")
        return {"num_classes": data.num_classes}

    # "val": entries from before the validation split was kept are not reused.
    payload = {"s": scenario.section_hash("data"), "role": "dataset", "v": CACHE_VERSION}
    key = key_of({**payload, "val": 1})
    entry = cache.get_or_build("datasets", key, build)
    tensors = torch.load(entry.file("dataset.pt"), weights_only=True)
    return Dataset(**tensors, num_classes=int(entry.meta["num_classes"]))


def _load(entry, role: str, index: int, key: str, cache_hit: bool) -> TrainedModel:
    outputs = torch.load(entry.file("outputs.pt"), weights_only=True)
    return TrainedModel(
        role,
        index,
        entry.file("weights.pt"),
        ModelOutputs(outputs["train"], outputs["test"]),
        float(entry.meta["train_seconds"]),
        cache_hit=cache_hit,
        key=key,
        trainer=entry.meta.get("trainer", "sequential"),
    )


def _train_stacked(
    scenario: Scenario,
    spec: ModelSpec,
    data: Dataset,
    sets: dict[str, Split],
    wanted: list[tuple[str, int, str, str]],
    device: str,
    cache: Cache,
) -> set[str]:
    """Train the `wanted` models (role, index, training set's name, cache key) batched,
    one stacked run per training set, and cache each; the keys trained. A model's
    `train_seconds` is its share of its run (the run's time over its models)."""
    trained = set()
    for name in sorted({w[2] for w in wanted}):
        group = [w for w in wanted if w[2] == name]
        seeds = [init_seed(scenario, role, k) for role, k, _, _ in group]
        run = train_batched(spec, sets[name], scenario.train, seeds, device=device)
        meta = {
            "train_seconds": run.seconds / len(group),
            "device": device,
            "torch": torch.__version__,
            "trainer": "stacked",  # as its key says (`path`: how it ran)
            "path": run.path,
            "batch": len(group),
        }
        for (_, _, _, key), model, seed in zip(group, run.models, seeds, strict=True):
            cache.get_or_build("models", key, _stacked_entry(model, data, {**meta, "seed": seed}))
            trained.add(key)
        log.info("%d models trained at once (%s): %.1f s", len(group), run.path, run.seconds)
    return trained


def _stacked_entry(model: torch.nn.Module, data: Dataset, meta: dict) -> Callable[[Path], dict]:
    def build(tmp: Path) -> dict:
        torch.save(model.state_dict(), tmp / "weights.pt")
        outputs = infer(model, data)
        torch.save({"train": outputs.train, "test": outputs.test}, tmp / "outputs.pt")
        return meta

    return build


def _model_job(
    scenario: Scenario,
    spec: ModelSpec,
    role: str,
    index: int,
    device: str,
    train_file: Path,
    infer_file: Path,
) -> Job:
    """The job that trains model `index` of `role` from scratch on a worker."""
    request = TrainModelRequest(
        role=role,
        seed=index,
        rng_seed=init_seed(scenario, role, index),
        budget_seconds=TRAIN_MODEL_LIMIT,
        device=device,
        model_spec=spec.to_dict(),
        recipe=scenario.train.model_dump(mode="json"),
        inputs={"train": f"{INPUTS}/train.pt", "infer": f"{INPUTS}/infer.pt"},
    )
    files = {f"{INPUTS}/train.pt": train_file, f"{INPUTS}/infer.pt": infer_file}
    caps = scenario.limits  # harness code, but it runs in the same sandbox as a method
    limits = Limits(
        budget=TRAIN_MODEL_LIMIT,
        memory_bytes=caps.memory,
        file_bytes=caps.file_size,
        log_bytes=caps.log_size,
        max_processes=caps.processes,
    )
    return Job(f"{role}-{index}", request, files, limits)


def _problem(outcome: Outcome, spec: ModelSpec, data: Dataset) -> str | None:
    """Why a model job's outputs cannot be cached, or None (they come from another
    machine: checked like anything that crosses one)."""
    if outcome.status != "ok":
        return f"{outcome.status}: {outcome.error}"
    _, problem = returned_weights(outcome.weights, spec, "cpu", weights_cap(spec))
    if problem:
        return problem
    rows = len(data.y_train) + len(data.y_test)
    cap = 2 * 4 * rows * data.num_classes + (1 << 20)  # float32 logits, as for weights
    try:
        raw = read_output(outcome.folder / OUTPUT / LOGITS, cap)
        logits = torch.load(io.BytesIO(raw), weights_only=True)
        shapes = {k: tuple(logits[k].shape) for k in ("train", "test")}
        finite = all(torch.isfinite(logits[k]).all() for k in ("train", "test"))
    except Exception as exc:
        return f"unreadable outputs: {type(exc).__name__}: {exc}"
    want = {
        "train": (len(data.y_train), data.num_classes),
        "test": (len(data.y_test), data.num_classes),
    }
    if shapes != want or not finite:
        return f"outputs of shapes {shapes} (finite: {finite}), expected {want}"
    return None


def _from_job(outcome: Outcome, device: str) -> Callable[[Path], dict]:
    """Move a model job's weights and logits into a cache entry."""

    def build(tmp: Path) -> dict:
        shutil.move(outcome.weights, tmp / "weights.pt")
        shutil.move(outcome.folder / OUTPUT / LOGITS, tmp / "outputs.pt")
        return {
            "train_seconds": outcome.seconds,
            "seed": outcome.seed,
            "device": device,
            "torch": torch.__version__,
        }

    return build


def _train_through(
    executor: Executor,
    scenario: Scenario,
    spec: ModelSpec,
    data: Dataset,
    sets: dict[str, Split],
    wanted: list[tuple[str, int, str, str]],
    device: str,
    cache: Cache,
) -> set[str]:
    """Train the `wanted` models (role, index, training set's name in `sets`, cache key)
    as jobs through `executor` and cache them; the keys trained. A model whose job
    failed is left out (prepare then trains it in process). A set other than `full` and
    `retain` (a deletion stream's prefix) names its jobs too, so that keys stay unique."""
    work = work_root() / f"prepare-{scenario.name}-{uuid.uuid4().hex[:8]}"
    (work / INPUTS).mkdir(parents=True)
    try:
        files = {}
        for name in sorted({w[2] for w in wanted}):
            files[name] = work / INPUTS / f"{name}.pt"
            torch.save({"x": sets[name].x, "y": sets[name].y}, files[name])
        infer_file = work / INPUTS / "infer.pt"
        torch.save({"x_train": data.x_train, "x_test": data.x_test}, infer_file)
        keys, jobs = {}, []
        for role, index, name, key in wanted:
            job = _model_job(scenario, spec, role, index, device, files[name], infer_file)
            if name not in ("full", "retain"):
                job = replace(job, key=f"{name}-{job.key}")
            keys[job.key] = key
            jobs.append(job)
        trained = set()
        for outcome in executor.run(jobs, work):
            problem = _problem(outcome, spec, data)
            if problem:
                log.warning("%s: its job failed (%s); training it here", outcome.key, problem)
                continue
            cache.get_or_build("models", keys[outcome.key], _from_job(outcome, device))
            trained.add(keys[outcome.key])
        return trained
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cached(cache: Cache, payload: dict[str, Any], compute: Callable[[], dict]) -> dict:
    """`compute()`, cached under a hash of `payload` and the metrics' version."""
    key = key_of({**payload, "metrics_version": METRICS_VERSION})
    return cache.get_or_build("metrics", key, lambda tmp: compute()).meta


def _reference(
    scenario: Scenario,
    data: Dataset,
    split: ForgetSplit,
    cache: Cache,
    original: TrainedModel,
    gold: tuple[TrainedModel, ...],
    holdout: tuple[TrainedModel, ...],
    ins: tuple[TrainedModel, ...],
    spec: ModelSpec,
    device: str,
    split_key: str | None = None,
) -> Reference:
    # What keys the models' cached metrics besides the model: the forget split (a
    # deletion stream's prefix gives its own `split_key`).
    split_hash = split_key or scenario.section_hash("data", "forget")
    seed = mia_seed(scenario)

    def metrics(m: TrainedModel) -> dict[str, float]:
        payload = {"model": m.key, "split": split_hash}
        return _cached(cache, payload, lambda: model_metrics(m.outputs, data, split, seed))

    gold_confs = forget_confidences((m.outputs for m in gold), data, split)
    holdout_confs = forget_confidences((m.outputs for m in holdout), data, split)
    by_n, spreads = {}, {}
    pool = np.concatenate([gold_confs, holdout_confs])
    n = min(len(gold), scenario.submit.seeds)  # a default submission's N
    if len(holdout) and n >= 2 and len(pool) >= 2 * n:
        payload = {"pooled_ceiling": [m.key for m in (*gold, *holdout)], "n": n}
        payload["pairs"] = CEILING_PAIRS

        def pooled() -> dict[str, float]:
            got = pooled_ceiling(pool, n, pairs=CEILING_PAIRS)
            return {"mean": got.mean, "std": got.std, "se": got.se}

        value = _cached(cache, payload, pooled)
        by_n[n], spreads[n] = value["mean"], value["std"]
    relearned = gold_relearning(scenario, spec, data, split, cache, gold, device)
    return Reference(
        original=metrics(original),
        gold=tuple({**metrics(m), **r} for m, r in zip(gold, relearned, strict=True)),
        gold_confs=gold_confs,
        holdout_confs=holdout_confs,
        in_confs=forget_confidences((m.outputs for m in ins), data, split),
        ceilings=by_n,
        ceiling_spreads=spreads,
        fix_variance=scenario.lira.fix_variance,
        gold_margins=forget_margins((m.outputs for m in gold), data, split),
        holdout_margins=forget_margins((m.outputs for m in holdout), data, split),
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
    executor: Executor | None = None,
) -> Artifacts:
    """Build (or load from the cache) everything a submission is scored against.

    `gold_seeds`, `ceiling` and `in_models` override the scenario's counts; `on_model`
    hears of each model as it is trained or loaded. With an `executor`, the models not
    in the cache are trained as jobs through it (several at once, or on a cluster),
    and cached here as they come back; without, one after another in this process."""
    device = resolve_device(device)
    cache = cache or Cache(cache_root())
    data = _dataset(scenario, cache)
    split = make_split(scenario.forget, scenario.seed, data)
    spec = spec_for(scenario.model, data.input_shape, data.num_classes)
    declared = data_registry.signature(scenario.data)
    if (data.input_shape, data.num_classes) != declared:  # plan resolved the spec from these
        raise RuntimeError(
            f"dataset '{scenario.data.dataset}' declares inputs {declared[0]} and "
            f"{declared[1]} classes, but loaded {data.input_shape} and {data.num_classes}"
        )
    full = Split(data.x_train, data.y_train, scenario.train.augment)
    sets = {"full": full, "retain": full.subset(split.retain_idx)}

    n_gold = scenario.gold.seeds if gold_seeds is None else gold_seeds
    with_ceiling = scenario.gold.ceiling if ceiling is None else ceiling
    n_in = scenario.lira.in_models if in_models is None else in_models
    # (role, index, training set, label): label "in" for LiRA's IN models, which are
    # replicas of the original (its role's seeds 1..M, so they share its cache entries)
    models = [("original", 0, "full", "original")]
    models += [("gold", k, "retain", "gold") for k in range(n_gold)]
    models += [
        ("gold-holdout", k, "retain", "gold-holdout") for k in range(n_gold if with_ceiling else 0)
    ]
    models += [("original", k, "full", "in") for k in range(1, n_in + 1)]
    trainers = {(role, k): trainer_for(role, k, spec, device) for role, k, _, _ in models}
    keys = {
        (role, k): _key(scenario, role, k, data.fingerprint, device, trainers[role, k])
        for role, k, _, _ in models
    }
    # Each entry's files are hashed once per prepare: the valid ones found here are the
    # ones `one` loads (a digits-random10 prepare on a cache hit: 195 files, not 389).
    found = {keys[role, k]: cache.get("models", keys[role, k]) for role, k, _, _ in models}
    missing = [
        (role, k, name, keys[role, k])
        for role, k, name, _ in models
        if found[keys[role, k]] is None
    ]
    stacked = [w for w in missing if trainers[w[0], w[1]] == "stacked"]
    trained: set[str] = set()
    if stacked:  # in this process, whatever the executor: one run trains them all
        trained |= _train_stacked(scenario, spec, data, sets, stacked, device, cache)
    if executor is not None:
        wanted = [w for w in missing if trainers[w[0], w[1]] != "stacked"]
        if wanted:
            trained |= _train_through(executor, scenario, spec, data, sets, wanted, device, cache)

    def one(role: str, index: int, name: str, label: str) -> TrainedModel:
        seed = init_seed(scenario, role, index)
        key = keys[role, index]
        entry = found[key] or cache.get_or_build(
            "models", key, _trainer(scenario, spec, data, sets[name], seed, device)
        )
        model = _load(entry, label, index, key, cache_hit=not entry.built and key not in trained)
        if on_model:
            on_model(model)
        return model

    loaded = [one(*m) for m in models]
    original = loaded[0]
    gold = tuple(m for m in loaded if m.role == "gold")
    holdout = tuple(m for m in loaded if m.role == "gold-holdout")
    ins = tuple(m for m in loaded if m.role == "in")
    reference = _reference(scenario, data, split, cache, original, gold, holdout, ins, spec, device)
    return Artifacts(scenario, data, split, spec, original, gold, holdout, ins, reference)
