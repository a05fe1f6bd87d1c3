"""The training stage of methods that change training itself (SISA): run, cache, hand over.

A method that implements `Method.train` is trained once per (training set, method and
its version, training fields, seed, device) in a worker of its own: a `TrainRequest`
job through the same executor, runner and statuses as `unlearn()`, under a limit of
`train_limit` seconds. The worker gets the whole training set and an empty `state/`
folder, never the test set. The cache entry (`method-train`) holds the returned
weights, the state folder and the stage's time, `train_seconds`: the method's training
cost, reported apart from its unlearning cost. A second, small entry
(`method-train-outputs`) holds the harness's one inference pass of the trained model,
rebuilt from the method's `output_spec` like any returned model, from which
`trained_test_acc` and `trained_acc_drop` (the original model's test accuracy minus the
trained model's: for SISA, the accuracy lost to sharding) come. A failed stage is never
cached; the seed it was for gets its outcome, with "train(): " in front of the error.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..cache import Cache
from ..errors import UsageError
from ..evaluation.inference import ModelOutputs, infer, load_weights
from ..evaluation.metrics.accuracy import accuracy
from ..hashing import key_of
from ..isolation.executor import Executor
from ..isolation.protocol import INPUTS, Job, Limits, Outcome, TrainRequest
from ..paths import cache_root
from ..seeding import derive_seed
from .plan import method_ref
from .prepare import CACHE_VERSION

if TYPE_CHECKING:
    from ..models.spec import ModelSpec
    from .plan import Submission
    from .prepare import Artifacts

log = logging.getLogger("mu_bench")

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


def stage_key(sub: Submission, art: Artifacts, seed: int, device: str) -> str:
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


def _job(sub: Submission, art: Artifacts, seed: int, device: str, train_file: Path) -> Job:
    request = TrainRequest(
        method=method_ref(sub.entry),
        params=sub.params,
        seed=seed,
        rng_seed=derive_seed(sub.scenario.seed, "method-train", seed),
        budget_seconds=train_limit(art),
        device=device,
        num_classes=art.data.num_classes,
        model_spec=art.spec.to_dict(),
        recipe=sub.scenario.train.model_dump(mode="json"),
        inputs={"train": f"{INPUTS}/train.pt"},
    )
    limits = Limits(budget=train_limit(art))
    return Job(f"train-seed-{seed}", request, {f"{INPUTS}/train.pt": train_file}, limits)


def _failed(outcome: Outcome) -> Outcome:
    log.info("training stage, seed %d: %s: %s", outcome.seed, outcome.status, outcome.error)
    return replace(
        outcome,
        error=f"train(): {outcome.error}",
        seconds=None,
        wall_seconds=None,
        startup_seconds=None,
    )


def run_training_stage(
    sub: Submission,
    art: Artifacts,
    device: str,
    seeds: range,
    executor: Executor,
    work: Path,
    *,
    cache: Cache | None = None,
) -> dict[int, TrainedMethod | Outcome]:
    """Each seed's trained stage (from the cache, or run now through `executor`), or the
    outcome it failed with."""
    cache = cache or Cache(cache_root())
    out_spec = sub.method.output_spec(art.spec)
    keys = {seed: stage_key(sub, art, seed, device) for seed in seeds}
    missing = [s for s in seeds if cache.get("method-train", keys[s]) is None]
    results: dict[int, TrainedMethod | Outcome] = {}
    if missing:
        train_file = work / "train.pt"
        work.mkdir(parents=True, exist_ok=True)
        torch.save({"x": art.data.x_train, "y": art.data.y_train}, train_file)
        jobs = [_job(sub, art, seed, device, train_file) for seed in missing]
        for outcome in executor.run(jobs, work):
            if outcome.status == "ok":
                _, problem = load_weights(outcome.weights, out_spec, "cpu")
                if problem:
                    outcome = outcome.with_status("invalid", problem)
            if outcome.status != "ok":
                results[outcome.seed] = _failed(outcome)
                continue
            cache.get_or_build("method-train", keys[outcome.seed], _store(sub, outcome, device))
    for seed in seeds:
        if seed in results:
            continue
        entry = cache.get_or_build("method-train", keys[seed], _unreachable)
        outputs = _outputs(cache, keys[seed], entry.file("weights.pt"), out_spec, art, device)
        results[seed] = TrainedMethod(
            seed,
            entry.file("weights.pt"),
            entry.file("state"),
            float(entry.meta["train_seconds"]),
            outputs,
            cache_hit=seed not in missing,
        )
        how = "cached" if seed not in missing else "trained"
        seconds = results[seed].train_seconds
        log.info("training stage, seed %d: %s (train() took %.2f s)", seed, how, seconds)
    return dict(sorted(results.items()))


def _store(sub: Submission, outcome: Outcome, device: str):
    """Move a finished stage's weights and state folder into a cache entry."""

    def build(tmp: Path) -> dict[str, Any]:
        shutil.move(outcome.weights, tmp / "weights.pt")
        if outcome.state.is_dir():
            shutil.move(outcome.state, tmp / "state")
        else:
            (tmp / "state").mkdir()
        return {
            "train_seconds": outcome.seconds,
            "seed": outcome.seed,
            "device": device,
            "torch": torch.__version__,
            "method": sub.entry.name,
            "fields": training_params(sub),
        }

    return build


def _unreachable(tmp: Path) -> dict[str, Any]:
    raise RuntimeError("the training stage's cache entry vanished after it was stored")


def _outputs(
    cache: Cache, key: str, weights: Path, out_spec: ModelSpec, art: Artifacts, device: str
) -> ModelOutputs:
    """The trained model's one inference pass, cached beside the stage."""

    def build(tmp: Path) -> dict[str, Any]:
        model, problem = load_weights(weights, out_spec, device)
        if problem:  # the stage validated these weights against the same architecture
            raise RuntimeError(problem)
        outputs = infer(model, art.data)
        torch.save({"train": outputs.train, "test": outputs.test}, tmp / "outputs.pt")
        return {"spec": out_spec.to_dict()}

    entry = cache.get_or_build(
        "method-train-outputs", key_of({"stage": key, "spec": out_spec.to_dict()}), build
    )
    logits = torch.load(entry.file("outputs.pt"), weights_only=True)
    return ModelOutputs(logits["train"], logits["test"])


def trained_metrics(trained: TrainedMethod, art: Artifacts) -> dict[str, float]:
    """The stage's cost and the accuracy the trained model loses against the original
    (test accuracy on the kept classes, as `test_acc`)."""
    kept = art.split.test_kept
    y = art.data.y_test[kept]
    acc = accuracy(trained.outputs.test[kept], y)
    original = accuracy(art.original.outputs.test[kept], y)
    return {
        "train_seconds": trained.train_seconds,
        "trained_test_acc": acc,
        "trained_acc_drop": original - acc,
    }
