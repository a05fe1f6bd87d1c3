"""Stage 3, execute: the training stage, one job per seed through an executor, and the
returned weights validated: the seeds' outcomes.

Each seed's job carries an `UnlearnRequest` and the only files its worker gets: the
starting weights (the original model, or the seed's trained model for a method with a
training stage, with a private copy of its state folder and the rows' training-set
positions) and the sets the method declares it reads (forget, retain, the scenario's
validation set). Jobs go to the executor together (`start` builds them, `Pending.accept`
takes each outcome: a grid sends many submissions' jobs to one executor at once) and
their outcomes come back in any order; a seed whose training stage failed keeps that
failure as its outcome and runs no job. Every `ok` outcome's weights are read as
untrusted input (a regular file under a size cap, `returned_weights`), rebuilt into the
method's declared architecture (`Method.output_spec`, resolved at plan time) and checked
(shapes, finite values); anything else becomes `invalid` with the reason. A failed seed
never stops the others.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..data.forget import drawn_classes
from ..evaluation.inference import returned_weights, weights_cap
from ..isolation.executor import Executor, SerialExecutor
from ..isolation.launch import prestart
from ..isolation.protocol import INPUTS, Job, Limits, Outcome, UnlearnRequest
from ..method import read_sets
from ..seeding import derive_seed
from .plan import budget_seconds, method_ref
from .prepare import init_seed
from .training_stage import TrainedMethod, run_training_stage, trained_metrics

if TYPE_CHECKING:
    from ..models.spec import ModelSpec
    from .plan import Submission
    from .prepare import Artifacts

log = logging.getLogger("mu_bench")


@dataclass(frozen=True)
class Execution:
    """What ran: the budget it ran under, the architecture the method returns, and one
    outcome per seed in seed order (weights validated: an `ok` seed's weights load)."""

    budget_seconds: float
    out_spec: ModelSpec
    outcomes: tuple[Outcome, ...]
    stage_metrics: dict[int, dict[str, float]] = field(default_factory=dict)  # per seed
    timings: dict[str, float] = field(default_factory=dict)
    sandbox: str = "none"  # the weakest sandbox any of its jobs ran under


def write_inputs(sub: Submission, art: Artifacts, folder: Path) -> dict[str, Path]:
    """The files every seed's worker reads: the original's weights and the declared sets
    (written once per submission; jobs link them). Returns {input role: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"model": art.original.weights}
    reads = read_sets(sub.method.reads)
    for which in ("forget", "retain", "validation"):
        if which in reads:
            split = getattr(art, which)
            if split is None:  # plan checks this first; never hand over something else
                raise RuntimeError(f"scenario {sub.scenario.name} has no {which} set")
            path = folder / f"{which}.pt"
            if not path.exists():  # another submission to the scenario wrote it
                torch.save({"x": split.x, "y": split.y}, path)
            files[which] = path
    return files


def _index_file(art: Artifacts, folder: Path) -> Path:
    """Training-set positions of the forget and retain rows, for methods with a stage."""
    path = folder / "index.pt"
    torch.save({"forget": art.split.forget_idx, "retain": art.split.retain_idx}, path)
    return path


@dataclass(frozen=True)
class StartFrom:
    """A seed's own starting point instead of the original model: a deletion stream's
    previous request's returned weights (in the method's `output_spec` architecture)
    and, for a method with a training stage, the state folder it left."""

    weights: Path
    state: Path | None = None


def seed_job(
    sub: Submission,
    art: Artifacts,
    seed: int,
    limits: Limits,
    device: str,
    files: dict[str, Path],
    stage: TrainedMethod | None = None,
    out_spec: ModelSpec | None = None,
    *,
    start: StartFrom | None = None,
    rng_seed: int | None = None,
) -> Job:
    """The job for one seed: its request and the files it reads (`rng_seed`: default the
    submission stream's seed for `seed`)."""
    forget = sub.scenario.forget
    roles = dict(files)
    if stage is not None:  # start from this seed's trained model
        roles.update(model=stage.weights, trained_dir=stage.state)
    if start is not None:
        roles["model"] = start.weights
        if start.state is not None:
            roles["trained_dir"] = start.state
    names = {r: f"{INPUTS}/{'state' if r == 'trained_dir' else r + '.pt'}" for r in roles}
    other_start = stage is not None or start is not None
    if rng_seed is None:
        rng_seed = derive_seed(sub.scenario.seed, "submission", seed)
    request = UnlearnRequest(
        method=method_ref(sub.entry),
        params=sub.params,
        seed=seed,
        rng_seed=rng_seed,
        budget_seconds=limits.budget,
        device=device,
        num_classes=art.data.num_classes,
        model_spec=art.spec.to_dict(),
        recipe=sub.scenario.train.model_dump(mode="json"),
        inputs=names,
        # The classes of this forget draw (a tuning set's or a family member's), not the
        # scenario's listed ones, which only draw 0 forgets.
        forget_classes=(
            drawn_classes(forget, art.data.num_classes) if forget.rule == "class" else None
        ),
        initial_seed=init_seed(sub.scenario, "original", 0),  # for task.initial_model()
        start_spec=out_spec.to_dict() if other_start and out_spec is not None else None,
    )
    return Job(f"seed-{seed}", request, {names[r]: p for r, p in roles.items()}, limits)


@dataclass
class Pending:
    """A submission's seeds on their way through an executor: its jobs (`seed-N`, run in
    `work/seed-N/`), and the outcomes as they arrive (`accept`), then the `Execution`."""

    sub: Submission
    art: Artifacts
    budget_seconds: float
    out_spec: ModelSpec
    jobs: list[Job]
    stages: dict[int, TrainedMethod | Outcome]
    timings: dict[str, float]
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    def accept(self, outcome: Outcome) -> Outcome:
        """Take a seed's outcome, its weights validated (`invalid` with the reason when they
        are not a regular file under the cap or do not load into the declared
        architecture)."""
        if outcome.status == "ok":
            cap = weights_cap(self.out_spec)
            _, problem = returned_weights(outcome.weights, self.out_spec, "cpu", cap)
            if problem:
                outcome = outcome.with_status("invalid", problem)
        self.outcomes[outcome.seed] = outcome
        return outcome

    @property
    def done(self) -> bool:
        return len(self.outcomes) == self.sub.seeds

    def finish(self) -> Execution:
        seeds = range(self.sub.seeds)
        startups = [
            o.startup_seconds for o in self.outcomes.values() if o.startup_seconds is not None
        ]
        timings = dict(self.timings)
        if startups:
            timings["worker_startup_seconds"] = statistics.median(startups)
        sandboxes = {o.sandbox for o in self.outcomes.values() if o.sandbox}
        return Execution(
            self.budget_seconds,
            self.out_spec,
            tuple(self.outcomes[s] for s in seeds),
            {
                s: trained_metrics(t, self.art)
                for s, t in self.stages.items()
                if isinstance(t, TrainedMethod)
            },
            timings,
            min(sandboxes, key=_strength) if sandboxes else "none",
        )


def start(
    sub: Submission,
    art: Artifacts,
    device: str,
    work: Path,
    executor: Executor | None = None,
    *,
    grace: float = 2.0,
    inputs: Path | None = None,
) -> Pending:
    """Run `sub`'s training stage (through `executor`) and build one job per seed; a seed
    is killed `grace` seconds after its budget. The files every seed reads go to `inputs`
    (default `work/inputs`; submissions to one scenario may share a folder)."""
    executor = executor or SerialExecutor()
    prestart(device)
    budget = budget_seconds(
        sub.budget, sub.scenario, art.retrain_seconds, sub.method.default_budget
    )
    out_spec = sub.method.output_spec(art.spec)
    inputs = inputs or work / INPUTS
    files = write_inputs(sub, art, inputs)
    seeds = range(sub.seeds)
    timings: dict[str, float] = {}
    stages: dict[int, TrainedMethod | Outcome] = {}
    if sub.method.has_training_stage:
        clock = time.perf_counter()
        stages = run_training_stage(sub, art, device, seeds, executor, work / "train")
        files["index"] = _index_file(art, inputs)
        timings["train_stage_seconds"] = time.perf_counter() - clock
    pending = Pending(sub, art, budget, out_spec, [], stages, timings)
    for seed, stage in stages.items():
        if isinstance(stage, Outcome):  # its training stage failed: no job
            pending.outcomes[seed] = stage
    limits = sub.worker_limits(budget, grace=grace)
    pending.jobs = [
        seed_job(sub, art, seed, limits, device, files, stages.get(seed), out_spec)
        for seed in seeds
        if seed not in pending.outcomes
    ]
    return pending


def execute(
    sub: Submission,
    art: Artifacts,
    device: str,
    work: Path,
    executor: Executor | None = None,
    *,
    grace: float = 2.0,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Execution:
    """Run every seed of `sub` (and first its training stage) in `work`; a seed is killed
    `grace` seconds after its budget. `on_outcome` hears of each seed's outcome, weights
    validated, as it arrives (`evaluate.Scorer` starts scoring it while the rest run)."""
    executor = executor or SerialExecutor()
    pending = start(sub, art, device, work, executor, grace=grace)
    for outcome in executor.run(pending.jobs, work):
        outcome = pending.accept(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
        took = f"{outcome.seconds:.2f} s" if outcome.seconds is not None else "-"
        failure = f": {outcome.error}" if outcome.error and outcome.status != "ok" else ""
        log.info("seed %d: %s (%s)%s", outcome.seed, outcome.status, took, failure)
    return pending.finish()


def _strength(mechanism: str) -> int:
    """Weakest first: a submission is as verified as its least confined job."""
    from ..isolation.sandbox import MECHANISMS

    return -MECHANISMS.index(mechanism) if mechanism in MECHANISMS else -math.inf
