"""Deletion streams: a scenario's forget set deleted in k requests, one after another.

A scenario with a `[stream]` section deletes its forget set D_f (drawn by its `[forget]`
rule) in `requests` requests D_0, ..., D_{k-1}: a partition of D_f in an order drawn
from the scenario's seed (`request_indices`). The stream is composed from the
submission's stages, not added to them:

    prepare_stream  `prepare` (the original, the scenario's gold, holdout and IN models),
                    then for each prefix r < k - 1 its own gold models, retrained from
                    scratch without D_0..D_r (the scenario's `[gold] seeds` of them,
                    each a cache entry keyed by the deleted rows, so that every method
                    and every scenario with that prefix reuses them), and the prefix's
                    reference; the last prefix deletes all of D_f, so its gold models
                    are the scenario's own. With an executor (`--jobs`, Dask), the
                    models not cached are `TrainModelRequest` jobs through it, as
                    `prepare` trains its own: every prefix's in one batch
    run_stream      the method's training stage (cached, as for any submission); then
                    per request r, one job per seed through the executor
                    (`execute.seed_job`), starting from that seed's own output of
                    request r - 1 (request 0: the original, or the trained model) and,
                    for a method with a training stage, the state folder that request
                    left (`task.state_dir`); the weights validated; then `evaluate`
                    against prefix r's gold models

What request r's seeds see: the forget set is D_r alone; the retain set is every row
not deleted so far (the training set without D_0..D_r), so a method with a training
stage finds the rows of earlier requests in neither `forget_index` nor `retain_index`.
What request r is scored on: the forget set is everything deleted so far (D_0..D_r),
the retain set the rest, against prefix r's gold models; after the last request that
is the scenario's own forget set and gold models, so the final numbers compare with a
one-shot submission's. Each request gets the whole budget; a seed that fails a request
keeps that failure for the rest of the stream.

The report is the last request's, with `requests` (one entry per request: its size, the
rows deleted so far, its status and metrics, and `stream_unlearn_seconds` so far) and
the cumulative cost: `stream_unlearn_seconds` (each seed's unlearn() times summed over
the requests, median over the seeds that finished every request), `stream_retrain_seconds`
(each prefix's gold retrain time, summed: retraining from scratch after every request)
and `stream_speedup`, their ratio.

Cost: the prefixes' gold models are k - 1 more sets of K retrainings, once per scenario
(the built-in `digits-stream10`: 9 x 8 digits models, about 1.2 s each here); the
stream runs k x seeds jobs and k evaluations (about 0.1 s per digits model).
"""

from __future__ import annotations

import logging
import shutil
import statistics
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..cache import Cache
from ..data.forget import ForgetSplit, make_split
from ..data.registry import build_dataset
from ..data.split import Split
from ..device import resolve_device
from ..errors import UsageError
from ..evaluation.inference import returned_weights, weights_cap
from ..hashing import key_of
from ..isolation.executor import Executor, SerialExecutor
from ..isolation.launch import prestart
from ..isolation.protocol import INPUTS, Outcome
from ..isolation.untrusted import check_tree
from ..paths import cache_root, work_root
from ..seeding import derive_seed
from .evaluate import Evaluation, evaluate
from .execute import Execution, StartFrom, _index_file, seed_job, write_inputs
from .plan import budget_seconds
from .prepare import (
    Artifacts,
    TrainedModel,
    _key,
    _load,
    _reference,
    _train_through,
    _trainer,
    init_seed,
    prepare,
)
from .training_stage import TrainedMethod, run_training_stage, trained_metrics

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..models.spec import ModelSpec
    from ..scenario import Scenario
    from .plan import Submission

log = logging.getLogger("mu_bench")

# The per-request metrics of the stream's cumulative cost, in the catalogue.
STREAM_METRICS = ("stream_unlearn_seconds", "stream_retrain_seconds", "stream_speedup")


def request_indices(scenario: Scenario, split: ForgetSplit) -> list[torch.Tensor]:
    """The stream's requests: the forget set's training positions in an order drawn from
    the scenario's seed, cut into `requests` parts (the first |D_f| % k one longer),
    each sorted. A UsageError when there are more requests than forget examples."""
    if scenario.stream is None:
        raise UsageError(f"scenario '{scenario.name}' has no [stream] section")
    k, forget = scenario.stream.requests, split.forget_idx.numpy()
    if k > len(forget):
        raise UsageError(
            f"scenario '{scenario.name}': [stream] requests = {k} exceeds the forget set's "
            f"{len(forget)} examples; give at most {len(forget)} requests"
        )
    order = np.random.default_rng(derive_seed(scenario.seed, "stream-order")).permutation(forget)
    return [torch.from_numpy(np.sort(part)).long() for part in np.array_split(order, k)]


def check_requests(scenario: Scenario) -> None:
    """A UsageError unless the scenario's requests fit its forget set (builds its data
    and split, trains nothing)."""
    data = build_dataset(scenario.data, scenario.seed)
    request_indices(scenario, make_split(scenario.forget, scenario.seed, data))


@dataclass(frozen=True)
class Prefix:
    """The state of the stream after request `index`: its rows, every row deleted so
    far, and what a model is scored against then (`art`: its split has forget = the
    deleted rows, and its gold models and reference are this prefix's)."""

    index: int
    request: torch.Tensor  # request `index`'s rows (training positions, sorted)
    deleted: torch.Tensor  # the rows of requests 0..index (sorted)
    art: Artifacts


@dataclass(frozen=True)
class StreamArtifacts:
    """The scenario's artifacts (`base`) and one `Prefix` per request."""

    base: Artifacts
    prefixes: tuple[Prefix, ...]

    @property
    def retrain_seconds(self) -> tuple[float, ...]:
        """Each prefix's gold retrain time (median over its gold models)."""
        return tuple(p.art.retrain_seconds for p in self.prefixes)

    def request_artifacts(self, r: int) -> Artifacts:
        """What request r's seeds are handed: forget = request r's rows, retain = every
        row not deleted by requests 0..r."""
        p = self.prefixes[r]
        split = replace(p.art.split, forget_idx=p.request)
        return replace(self.base, split=split)


def _prefix_split(n: int, deleted: torch.Tensor, base: ForgetSplit) -> ForgetSplit:
    retain = np.setdiff1d(np.arange(n), deleted.numpy())
    return ForgetSplit(deleted, torch.from_numpy(retain).long(), base.test_kept, base.test_gone)


def prepare_stream(
    scenario: Scenario,
    device: str = "auto",
    *,
    art: Artifacts | None = None,
    on_model: Callable[[TrainedModel], None] | None = None,
    cache: Cache | None = None,
    executor: Executor | None = None,
) -> StreamArtifacts:
    """The scenario's artifacts (prepared now unless `art` is given) and each prefix's
    gold models and reference, trained or loaded from the cache. With an `executor`, the
    models not in the cache are trained as jobs through it, as `prepare` trains its own
    (every prefix's at once); without, one after another in this process."""
    device = resolve_device(device)
    cache = cache or Cache(cache_root())
    if art is None:
        check_requests(scenario)  # before any model is trained: bad input writes nothing
        art = prepare(scenario, device, on_model=on_model, cache=cache, executor=executor)
    requests = request_indices(scenario, art.split)
    data, n = art.data, len(art.data.y_train)
    full = Split(data.x_train, data.y_train, scenario.train.augment)
    deleted = [torch.sort(torch.cat(requests[: r + 1])).values for r in range(len(requests))]
    if not torch.equal(deleted[-1], art.split.forget_idx):
        raise RuntimeError("the stream's requests do not add up to the forget set")
    # The last prefix deletes all of D_f: the scenario's own split and gold models.
    splits = [_prefix_split(n, d, art.split) for d in deleted[:-1]]
    digests = [key_of({"deleted": d.tolist()}) for d in deleted[:-1]]
    # Gold model i of a prefix: seeded as the scenario's own gold model i, keyed by the
    # deleted rows (so any scenario and method with that prefix shares it).
    keys = {
        (r, i): _key(scenario, f"stream-gold:{digest}", i, data.fingerprint, device)
        for r, digest in enumerate(digests)
        for i in range(scenario.gold.seeds)
    }
    sets = {f"prefix-{r}": full.subset(split.retain_idx) for r, split in enumerate(splits)}
    trained: set[str] = set()
    if executor is not None:
        wanted = [
            ("gold", i, f"prefix-{r}", key)
            for (r, i), key in keys.items()
            if cache.get("models", key) is None
        ]
        if wanted:
            trained = _train_through(
                executor, scenario, art.spec, data, sets, wanted, device, cache
            )
    prefixes = []
    for r, split in enumerate(splits):
        gold = []
        for i in range(scenario.gold.seeds):
            key = keys[r, i]
            seed = init_seed(scenario, "gold", i)
            build = _trainer(scenario, art.spec, data, sets[f"prefix-{r}"], seed, device)
            entry = cache.get_or_build("models", key, build)
            hit = not entry.built and key not in trained
            model = _load(entry, f"gold-{r}", i, key, cache_hit=hit)
            if on_model:
                on_model(model)
            gold.append(model)
        split_key = key_of(
            {"split": scenario.section_hash("data", "forget"), "deleted": digests[r]}
        )
        reference = _reference(
            scenario,
            data,
            split,
            cache,
            art.original,
            tuple(gold),
            (),
            art.in_models,
            art.spec,
            device,
            split_key,
        )
        prefix_art = replace(
            art, split=split, gold=tuple(gold), gold_holdout=(), reference=reference
        )
        prefixes.append(Prefix(r, requests[r], deleted[r], prefix_art))
    prefixes.append(Prefix(len(requests) - 1, requests[-1], deleted[-1], art))
    return StreamArtifacts(art, tuple(prefixes))


@dataclass(frozen=True)
class StreamResult:
    """The stream's evaluation (the last request's, its report carrying the stream),
    the artifacts it was scored against (for the figures), and each request's."""

    evaluation: Evaluation
    art: Artifacts
    requests: tuple[Evaluation, ...]


def run_stream(
    sub: Submission,
    device: str = "auto",
    *,
    stream: StreamArtifacts | None = None,
    executor: Executor | None = None,
    keep_work: bool = False,
    work: Path | None = None,
    grace: float = 2.0,
    timings: dict[str, float] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> StreamResult:
    """Run the planned submission `sub` on its scenario's stream of deletion requests
    (preparing the stream unless `stream` is given) in `work` (default: a fresh folder
    under the work root; `request-<r>/seed-<s>/` per job, kept with `keep_work`, else
    each request's folder is removed once no seed starts from it); `timings` join the
    report's; `on_outcome` hears of each seed's outcome of each request."""
    device = resolve_device(device)
    timings = dict(timings or {})
    if stream is None:
        clock = time.perf_counter()
        stream = prepare_stream(sub.scenario, device)
        timings["prepare_seconds"] = time.perf_counter() - clock
    if work is None:
        work = work_root() / f"{sub.scenario.name}-{sub.entry.name}-stream-{uuid.uuid4().hex[:8]}"
    try:
        executor = executor or SerialExecutor()
        return _run(sub, stream, device, executor, work, grace, timings, not keep_work, on_outcome)
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def _rng_seed(scenario: Scenario, request: int, seed: int) -> int:
    """Request 0 draws as a one-shot submission does; each later request its own stream."""
    stream = "submission" if request == 0 else f"submission-request-{request}"
    return derive_seed(scenario.seed, stream, seed)


def _run(
    sub: Submission,
    stream: StreamArtifacts,
    device: str,
    executor: Executor,
    work: Path,
    grace: float,
    timings: dict[str, float],
    sweep: bool,
    on_outcome: Callable[[Outcome], None] | None,
) -> StreamResult:
    base = stream.base
    prestart(device)
    budget = budget_seconds(
        sub.budget, sub.scenario, base.retrain_seconds, sub.method.default_budget
    )
    out_spec = sub.method.output_spec(base.spec)
    seeds = range(sub.seeds)
    staged = sub.method.has_training_stage
    starts: dict[int, StartFrom] = {}
    failed: dict[int, tuple[int | None, Outcome]] = {}  # seed -> (request, its outcome)
    stage_metrics: dict[int, dict[str, float]] = {}
    if staged:
        clock = time.perf_counter()
        stages = run_training_stage(sub, base, device, seeds, executor, work / "train")
        timings["train_stage_seconds"] = time.perf_counter() - clock
        for seed, stage in stages.items():
            if isinstance(stage, TrainedMethod):
                starts[seed] = StartFrom(stage.weights, stage.state)
                stage_metrics[seed] = trained_metrics(stage, base)
            else:
                failed[seed] = (None, stage)
    cumulative = dict.fromkeys(seeds, 0.0)
    retrain = np.cumsum(stream.retrain_seconds)
    evaluations: list[Evaluation] = []
    summaries: list[dict[str, Any]] = []
    startups: list[float] = []
    evaluate_seconds = 0.0
    for r, prefix in enumerate(stream.prefixes):
        folder = work / f"request-{r}"
        art_r = stream.request_artifacts(r)
        files = write_inputs(sub, art_r, folder / INPUTS)
        if staged:
            files["index"] = _index_file(art_r, folder / INPUTS)
        limits = sub.worker_limits(budget, grace=grace)
        jobs = [
            seed_job(
                sub,
                art_r,
                seed,
                limits,
                device,
                files,
                out_spec=out_spec,
                start=starts.get(seed),
                rng_seed=_rng_seed(sub.scenario, r, seed),
            )
            for seed in seeds
            if seed not in failed
        ]
        outcomes: dict[int, Outcome] = {}
        for outcome in executor.run(jobs, folder):
            outcome = _validated(outcome, out_spec)
            outcomes[outcome.seed] = outcome
            if on_outcome is not None:
                on_outcome(outcome)
            if outcome.startup_seconds is not None:
                startups.append(outcome.startup_seconds)
            if outcome.status == "ok" and outcome.seconds is not None:
                cumulative[outcome.seed] += outcome.seconds
                state = _next_state(outcome, starts.get(outcome.seed)) if staged else None
                starts[outcome.seed] = StartFrom(outcome.weights, state)
            else:
                failed[outcome.seed] = (r, outcome)
            took = f"{outcome.seconds:.2f} s" if outcome.seconds is not None else "-"
            log.info("request %d, seed %d: %s (%s)", r, outcome.seed, outcome.status, took)
        for seed, (at, outcome) in failed.items():
            if seed not in outcomes:
                outcomes[seed] = _carried(outcome, at)
        execution = Execution(budget, out_spec, tuple(outcomes[s] for s in seeds), stage_metrics)
        clock = time.perf_counter()
        evaluation = evaluate(sub, prefix.art, execution, device)
        evaluate_seconds += time.perf_counter() - clock
        evaluations.append(evaluation)
        alive = [s for s in seeds if s not in failed]
        summaries.append(_summary(prefix, evaluation, [cumulative[s] for s in alive], retrain[r]))
        if sweep:
            _sweep(work, r, starts)
    timings.update(evaluate_seconds=evaluate_seconds)
    if startups:
        timings["worker_startup_seconds"] = statistics.median(startups)
    final = evaluations[-1]
    report = final.report
    metrics = dict(report.metrics)
    metrics["stream_requests"] = float(len(stream.prefixes))
    metrics.update({k: v for k, v in summaries[-1]["metrics"].items() if k in STREAM_METRICS})
    seeds_out = tuple(
        replace(s, metrics={**s.metrics, "stream_unlearn_seconds": cumulative[s.seed]})
        if s.status == "ok"
        else s
        for s in report.seeds
    )
    note = (
        f"a stream of {len(stream.prefixes)} deletion requests: metrics after the last one "
        "(per request: `requests`); stream_* metrics are the cumulative cost"
    )
    report = replace(
        report,
        metrics=metrics,
        seeds=seeds_out,
        requests=tuple(summaries),
        notes=(*report.notes, note),
        timings={**timings, **report.timings, "evaluate_seconds": evaluate_seconds},
    )
    return StreamResult(replace(final, report=report), stream.prefixes[-1].art, tuple(evaluations))


def _validated(outcome: Outcome, out_spec: ModelSpec) -> Outcome:
    """An ok outcome whose weights do not load into the method's architecture (read as
    untrusted input, `returned_weights`), or whose state folder for the next request is
    not a plain tree (`check_tree`), is invalid."""
    if outcome.status == "ok":
        _, problem = returned_weights(outcome.weights, out_spec, "cpu", weights_cap(out_spec))
        if problem is None and outcome.state.is_dir():
            problem = check_tree(outcome.state)
        if problem:
            return outcome.with_status("invalid", problem)
    return outcome


def _next_state(outcome: Outcome, start: StartFrom | None) -> Path | None:
    """The state folder the next request gets: the one this request left, else (an empty
    `state_dir`) the one this request was given."""
    if outcome.state.is_dir() and any(outcome.state.iterdir()):
        return outcome.state
    return start.state if start is not None else None


def _carried(outcome: Outcome, at: int | None) -> Outcome:
    """A seed's failure, carried to a later request it never ran."""
    where = "its training stage" if at is None else f"request {at}"
    error = f"failed at {where} ({outcome.status}): {outcome.error}"
    return replace(
        outcome,
        error=error,
        traceback=None,
        seconds=None,
        wall_seconds=None,
        startup_seconds=None,
        reported={},
    )


def _summary(
    prefix: Prefix, evaluation: Evaluation, cumulative: list[float], retrain: float
) -> dict[str, Any]:
    """One request of the report's `requests`: what it deleted and the model after it."""
    report = evaluation.report
    metrics = dict(report.metrics)
    metrics["stream_retrain_seconds"] = float(retrain)
    if cumulative:
        spent = statistics.median(cumulative)
        metrics["stream_unlearn_seconds"] = spent
        metrics["stream_speedup"] = float(retrain) / spent if spent > 0 else float("inf")
    return {
        "request": prefix.index,
        "size": len(prefix.request),
        "deleted": len(prefix.deleted),
        "status": report.status,
        "seeds_ok": f"{report.seeds_ok}/{len(report.seeds)}",
        "metrics": metrics,
        "notes": list(report.notes),
    }


def _sweep(work: Path, r: int, starts: dict[int, StartFrom]) -> None:
    """Remove the folders of requests before r that no seed starts from any more (their
    inputs are a whole retain set each)."""
    needed = [p for s in starts.values() for p in (s.weights, s.state) if p is not None]
    for j in range(r):
        folder = work / f"request-{j}"
        if folder.exists() and not any(folder in p.parents for p in needed):
            shutil.rmtree(folder, ignore_errors=True)
