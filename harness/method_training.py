"""The training stage of methods that change training itself (SISA): run, cache, hand over.

A method that implements `Method.train` is trained once per (training set, method and
its version, training fields, seed, device) in a worker of its own: the same runner,
isolation and statuses as `unlearn()`, under a limit of `train_limit` seconds. The
worker gets the whole training set and a `state/` folder, never the test set. The cache
entry (`method-train`) holds the returned weights, the state folder and the stage's
time, `train_seconds`: the method's training cost, reported apart from its unlearning
cost. A second, small entry (`method-train-outputs`) holds the harness's one inference
pass of the trained model, rebuilt from the method's `output_spec` like any returned
model, from which `trained_test_acc` and `trained_acc_drop` (the original model's test
accuracy minus the trained model's: for SISA, the accuracy lost to sharding) come. A
failed stage is never cached; the seed it was for gets its status, with "train(): " in
front of the error. Each seed's `unlearn()` then starts from that seed's trained model,
with a private copy of its state folder and the training-set positions of the forget
and retain rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .artifacts import CACHE_VERSION, ModelOutputs
from .cache import Cache, key_of, link_or_copy
from .errors import UsageError
from .paths import cache_root
from .runner import Limits, SeedOutcome, run_worker
from .seeding import derive_seed

if TYPE_CHECKING:
    from .artifacts import Artifacts
    from .models import ModelSpec
    from .submit import Submission

# The stage has no budget of its own in a scenario; it is cut off at this many times the
# original model's training time (SISA with S shards does about one such training),
# and never sooner than TRAIN_LIMIT_MIN seconds.
TRAIN_LIMIT_FACTOR = 20.0
TRAIN_LIMIT_MIN = 600.0


@dataclass(frozen=True)
class TrainedMethod:
    """One seed's cached training stage."""

    seed: int
    weights: Path
    state: Path
    train_seconds: float
    outputs: ModelOutputs
    cache_hit: bool


class _StageFailed(Exception):
    def __init__(self, outcome: SeedOutcome):
        super().__init__(outcome.error)
        self.outcome = outcome


def train_limit(art: Artifacts) -> float:
    return max(TRAIN_LIMIT_MIN, TRAIN_LIMIT_FACTOR * art.original.train_seconds)


def training_params(sub: Submission) -> dict[str, Any]:
    """The validated fields that key the training stage (`Method.train_fields`)."""
    names = type(sub.method).train_fields
    if names is None:
        return dict(sub.params)
    unknown = sorted(set(names) - set(sub.params))
    if unknown:
        raise UsageError(
            f"method '{sub.entry.name}' lists unknown fields {unknown} in train_fields; "
            f"its fields are {sorted(sub.params)}"
        )
    return {k: sub.params[k] for k in names}


def _key(sub: Submission, art: Artifacts, seed: int, device: str) -> str:
    # The stage sees the training set, the architecture and the recipe, not the forget
    # set: scenarios that differ only in what they forget share it.
    return key_of(
        {
            "s": sub.scenario.section_hash("data", "model", "train"),
            "data": art.data.fingerprint,
            "method": sub.entry.value,
            "distribution": sub.entry.distribution,
            "version": sub.entry.version,
            "train_version": type(sub.method).train_version,
            "fields": training_params(sub),
            "seed": seed,
            "device": torch.device(device).type,
            "v": CACHE_VERSION,
        }
    )


def _stage_task(sub: Submission, art: Artifacts, seed: int, device: str, train_file: str):
    return {
        "stage": "train",
        "method": {"name": sub.entry.name, "value": sub.entry.value},
        "params": sub.params,
        "seed": seed,
        "rng_seed": derive_seed(sub.scenario.seed, "method-train", seed),
        "budget_seconds": train_limit(art),
        "device": device,
        "num_classes": art.data.num_classes,
        "model_spec": art.spec.to_dict(),
        "recipe": sub.scenario.train.model_dump(mode="json"),
        "inputs": {"train": train_file},
    }


def train_seeds(
    sub: Submission,
    art: Artifacts,
    device: str,
    seeds: Iterable[int],
    work: Path,
    *,
    on_event: Callable[[str], None] = lambda msg: None,
    grace: float = 2.0,
    startup: float = 300.0,
    cache: Cache | None = None,
) -> dict[int, TrainedMethod | SeedOutcome]:
    """Each seed's trained stage (from the cache, or run now), or the outcome it failed with."""
    from .evaluation import infer, load_weights

    cache = cache or Cache(cache_root())
    out_spec = sub.method.output_spec(art.spec)
    limits = Limits(budget=train_limit(art), grace=grace, startup=startup)
    train_file = work / "inputs" / "train.pt"

    def build_stage(seed: int):
        def build(tmp: Path) -> dict[str, Any]:
            if not train_file.exists():
                train_file.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"x": art.data.x_train, "y": art.data.y_train}, train_file)
            folder = work / f"train-seed-{seed}"
            task = _stage_task(sub, art, seed, device, str(train_file))
            outcome = run_worker(seed, folder, task, limits)
            if outcome.status != "ok":
                raise _StageFailed(outcome)
            _, problem = load_weights(folder / "trained.pt", out_spec, "cpu")
            if problem:
                raise _StageFailed(outcome.with_status("invalid", problem))
            shutil.move(folder / "trained.pt", tmp / "weights.pt")
            if (folder / "state").is_dir():
                shutil.move(folder / "state", tmp / "state")
            else:
                (tmp / "state").mkdir()
            return {
                "train_seconds": outcome.unlearn_seconds,
                "seed": seed,
                "device": device,
                "torch": torch.__version__,
                "method": sub.entry.name,
                "fields": training_params(sub),
            }

        return build

    def build_outputs(weights: Path):
        def build(tmp: Path) -> dict[str, Any]:
            model, problem = load_weights(weights, out_spec, device)
            if problem:  # the stage validated these weights against the same architecture
                raise RuntimeError(problem)
            outputs = infer(model, art)
            torch.save({"train": outputs.train, "test": outputs.test}, tmp / "outputs.pt")
            return {"spec": out_spec.to_dict()}

        return build

    results: dict[int, TrainedMethod | SeedOutcome] = {}
    for seed in seeds:
        key = _key(sub, art, seed, device)
        try:
            entry = cache.get_or_build("method-train", key, build_stage(seed))
        except _StageFailed as exc:
            failed = exc.outcome
            results[seed] = replace(
                failed,
                error=f"train(): {failed.error}",
                unlearn_seconds=None,
                wall_seconds=None,
                startup_seconds=None,
            )
            on_event(f"training stage, seed {seed}: {failed.status}: {failed.error}")
            continue
        outputs_key = key_of({"stage": key, "spec": out_spec.to_dict()})
        out_entry = cache.get_or_build(
            "method-train-outputs", outputs_key, build_outputs(entry.file("weights.pt"))
        )
        logits = torch.load(out_entry.file("outputs.pt"), weights_only=True)
        trained = TrainedMethod(
            seed,
            entry.file("weights.pt"),
            entry.file("state"),
            float(entry.meta["train_seconds"]),
            ModelOutputs(logits["train"], logits["test"]),
            cache_hit=not entry.built,
        )
        results[seed] = trained
        how = "cached" if trained.cache_hit else "trained"
        on_event(f"training stage, seed {seed}: {how} (train() took {trained.train_seconds:.2f} s)")
    return results


def trained_metrics(trained: TrainedMethod, art: Artifacts) -> dict[str, float]:
    """The stage's cost and the accuracy the trained model loses against the original
    (test accuracy on the kept classes, as `test_acc`)."""
    from .metrics.accuracy import accuracy

    kept = art.test_split[0]
    y = art.data.y_test[kept]
    acc = accuracy(trained.outputs.test[kept], y)
    original = accuracy(art.original.outputs.test[kept], y)
    return {
        "train_seconds": trained.train_seconds,
        "trained_test_acc": acc,
        "trained_acc_drop": original - acc,
    }


def write_index(art: Artifacts, folder: Path) -> str:
    """Training-set positions of the forget and retain rows, for the workers."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "index.pt"
    torch.save({"forget": art.split.forget_idx, "retain": art.split.retain_idx}, path)
    return str(path)


def add_to_task(
    task: dict[str, Any], trained: TrainedMethod, out_spec: ModelSpec, index: str, folder: Path
) -> None:
    """Point a seed's unlearn task at its trained model, a private copy of its state folder
    (so nothing the method writes there can touch the cache) and the index file."""
    folder.mkdir(parents=True, exist_ok=True)
    link_or_copy(trained.weights, folder / "trained.pt")
    shutil.copytree(trained.state, folder / "state")
    task["start_spec"] = out_spec.to_dict()
    task["inputs"] = {
        **task["inputs"],
        "model": str(folder / "trained.pt"),
        "trained_dir": str(folder / "state"),
        "index": index,
    }
