"""A grid: methods (each with one or more parameter sets) x scenarios x seeds, as one
batch through one executor, one submission per (method, parameters, scenario) on the
board.

    spec = load_grid_file(path)  or  GridSpec(methods=..., scenarios=...)
    cells = plan_grid(spec)                    # every cell validated before any compute
    run_grid(cells, uri, device, executor)     # prepare, run, evaluate, record

Every cell is planned (and so checked: scenario, method, parameters, seeds, budget)
before anything runs, so a typo in the last cell writes nothing. Each cell carries its
submission's idempotency key (`store.key_of`): a cell already on the board is skipped,
and a record cut short by a kill is discarded first, so a grid killed half-way and
started again runs only what is missing. Each scenario is prepared once (its models
through the executor). Then every cell's seed jobs go to the executor in one batch, so
a pool or a cluster stays busy across cells; as the last seed of a cell comes back, this
process evaluates it, draws its figures and records it (it is the only writer to the
store) while the executor carries on with the rest. A cell on a scenario with a
`[stream]` runs after the batch (`stream.run_stream`: its requests one after another,
each request's seeds through the same executor), and so does a cell on a scenario with
a `[family]` of forget sets (`family.run_family`: each set prepared once for every cell
of it, its sets one after another, one submission for the family).

Concurrent grids: two grids started at once on the same cells may both run a cell; the
grid checks the board again just before recording and does not record a cell that
landed meanwhile, which leaves a window of the record itself (a fraction of a second).
Run one grid per board at a time; the leaderboard shows the newest run per method and
parameters either way.

The grid file (TOML):

    scenarios = ["digits-class3", "digits-random10"]
    seeds = 8              # optional: the scenarios' default
    budget = "20%"         # optional: seconds or a share of the retrain time
    preset = true          # optional: false uses the papers' defaults, not the presets

    [methods]
    noop = {}                                  # one parameter set: preset + nothing
    finetune = {lr = 0.01}                     # one parameter set
    gradient-ascent = [{lr = 1e-4}, {lr = 1e-3}]   # two: two cells per scenario
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomllib

from ..errors import UsageError

if TYPE_CHECKING:
    from ..isolation.executor import Executor
    from ..isolation.protocol import Outcome
    from .evaluate import Evaluation
    from .execute import Pending
    from .plan import Submission
    from .prepare import Artifacts
    from .report import Report

log = logging.getLogger("mu_bench")

FILE_KEYS = ("methods", "scenarios", "seeds", "budget", "preset")


@dataclass(frozen=True)
class MethodSet:
    """A method and one set of parameters for it (on top of its preset)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        given = " ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name} {given}".strip()


@dataclass(frozen=True)
class GridSpec:
    methods: tuple[MethodSet, ...]
    scenarios: tuple[str, ...]
    seeds: int | None = None  # None: each scenario's default
    budget: str | None = None  # None: each method's or scenario's default
    preset: bool = True


def _names(text: str, what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UsageError(f"--{what} '{text}': give a comma-separated list of names")
    return names


def load_grid_file(path: Path) -> GridSpec:
    """The grid a TOML file describes (see the module docstring); UsageError on bad input."""
    where = f"grid file {path}"
    try:
        doc = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{where} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{where} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - set(FILE_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key '{unknown[0]}'. Valid keys: {', '.join(FILE_KEYS)}")
    methods: list[MethodSet] = []
    raw = doc.get("methods", {})
    if isinstance(raw, list) and all(isinstance(m, str) for m in raw):
        methods = [MethodSet(m) for m in raw]
    elif isinstance(raw, dict):
        for name, sets in raw.items():
            sets = [sets] if isinstance(sets, dict) else sets
            if not isinstance(sets, list) or not all(isinstance(p, dict) for p in sets) or not sets:
                raise UsageError(
                    f"{where}: methods.{name} must be a table of parameters or a list of them"
                )
            methods += [MethodSet(name, dict(p)) for p in sets]
    else:
        raise UsageError(f"{where}: 'methods' must be a list of names or a table of methods")
    scenarios = doc.get("scenarios", [])
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if not isinstance(scenarios, list) or not all(isinstance(s, str) for s in scenarios):
        raise UsageError(f"{where}: 'scenarios' must be a list of scenario names or paths")
    seeds = doc.get("seeds")
    if seeds is not None and (not isinstance(seeds, int) or isinstance(seeds, bool)):
        raise UsageError(f"{where}: 'seeds' must be a whole number")
    budget = doc.get("budget")
    if budget is not None and not isinstance(budget, str | int | float):
        raise UsageError(f"{where}: 'budget' must be seconds or a percentage such as \"20%\"")
    preset = doc.get("preset", True)
    if not isinstance(preset, bool):
        raise UsageError(f"{where}: 'preset' must be true or false")
    return GridSpec(
        tuple(methods),
        tuple(scenarios),
        seeds,
        None if budget is None else str(budget),
        preset,
    )


def grid_spec(
    file: Path | None,
    methods: str | None,
    scenarios: str | None,
    seeds: int | None,
    budget: str | None,
    no_preset: bool,
) -> GridSpec:
    """The grid of the command line: a file's, with what the flags give replacing it."""
    spec = load_grid_file(file) if file is not None else GridSpec((), ())
    if methods is not None:
        spec = replace(spec, methods=tuple(MethodSet(n) for n in _names(methods, "methods")))
    if scenarios is not None:
        spec = replace(spec, scenarios=_names(scenarios, "scenarios"))
    if seeds is not None:
        spec = replace(spec, seeds=seeds)
    if budget is not None:
        spec = replace(spec, budget=budget)
    if no_preset:
        spec = replace(spec, preset=False)
    if not spec.methods:
        raise UsageError(
            "the grid has no methods: give --methods a,b or a grid file with [methods]"
        )
    if not spec.scenarios:
        raise UsageError("the grid has no scenarios: give --scenarios x,y or 'scenarios' in a file")
    return spec


@dataclass
class Cell:
    """One submission of the grid: what it is and, as the grid runs, where it stands."""

    index: int
    sub: Submission
    label: str  # method and the parameters given
    key: str  # the idempotency key (`store.key_of`)
    state: str = "to run"  # "on the board", "recorded", "landed meanwhile"
    run_id: str | None = None
    report: Report | None = None

    @property
    def name(self) -> str:
        """A folder and job-key prefix unique within the grid."""
        return f"cell{self.index:03d}"

    @property
    def scenario(self) -> str:
        return self.sub.scenario.name


def plan_grid(spec: GridSpec, device: str, *, require_sandbox: bool = False) -> list[Cell]:
    """Every cell planned and keyed (`device` resolved): UsageError before any compute.
    Two cells that are the same submission (same key) are one. `require_sandbox`: every
    job refuses to run unsandboxed."""
    from mu_bench.leaderboard import store

    from ..scenario import load
    from .plan import plan

    scenarios = {name: load(name) for name in dict.fromkeys(spec.scenarios)}
    for scenario in scenarios.values():
        if scenario.family is not None:  # its draws fit its dataset
            from .family import check_family

            check_family(scenario)
        if scenario.stream is not None:  # its requests fit its forget set
            from .stream import check_requests

            check_requests(scenario)
    cells: list[Cell] = []
    seen: set[str] = set()
    for scenario in scenarios.values():
        for m in spec.methods:
            sub = plan(
                m.name, scenario, spec.seeds, spec.budget, m.params, spec.preset,
                require_sandbox=require_sandbox,
            )  # fmt: skip
            key = store.key_of(sub, device)
            if key not in seen:
                seen.add(key)
                cells.append(Cell(len(cells), sub, m.label, key))
    return cells


class GridObserver:
    """What a grid tells its display as it runs (every hook optional)."""

    def started(self, cells: Sequence[Cell], seeds_to_run: int) -> None: ...

    def phase(self, text: str) -> None: ...

    def seed_done(self, cell: Cell, outcome: Outcome) -> None: ...

    def cell_done(self, cell: Cell) -> None: ...


def run_grid(
    cells: Sequence[Cell],
    uri: str,
    device: str,
    executor: Executor,
    *,
    figures: bool = True,
    keep_work: bool = False,
    observer: GridObserver | None = None,
) -> Sequence[Cell]:
    """Run every cell not yet on the board through `executor` and record it in `uri`;
    the cells, each with its state and run id."""
    from mu_bench.leaderboard import store

    from ..isolation.executor import for_prepare
    from ..paths import work_root
    from .execute import start
    from .family import Prepared, prepare_family, run_family
    from .prepare import prepare
    from .stream import StreamArtifacts, prepare_stream, run_stream

    watch = observer or GridObserver()
    watch.phase("checking the board")
    for cell in cells:
        cell.run_id = store.find_submission(uri, cell.scenario, cell.key)
        if cell.run_id is not None:
            cell.state = "on the board"
    todo = [c for c in cells if c.state == "to run"]
    for cell in todo:  # records cut short by a killed grid
        gone = store.discard_incomplete(uri, cell.scenario, cell.key)
        if gone:
            log.info("%s on %s: discarded a record cut short (%s)", cell.label, cell.scenario, gone)
    watch.started(cells, sum(c.sub.seeds * _requests(c.sub) for c in todo))
    if not todo:
        return cells
    store.open_in_background(uri)
    root = work_root() / f"grid-{uuid.uuid4().hex[:8]}"
    try:
        arts: dict[str, Artifacts] = {}
        streams: dict[str, StreamArtifacts] = {}
        families: dict[str, tuple[Prepared, ...]] = {}
        prepared: dict[str, float] = {}
        for cell in todo:
            if cell.scenario not in arts:
                watch.phase(f"preparing {cell.scenario}")
                clock = time.perf_counter()
                if cell.sub.scenario.stream is not None:
                    streams[cell.scenario] = prepare_stream(
                        cell.sub.scenario, device, executor=for_prepare(executor)
                    )
                    arts[cell.scenario] = streams[cell.scenario].base
                elif cell.sub.scenario.family is not None:
                    families[cell.scenario] = prepare_family(
                        cell.sub.scenario, device, executor=for_prepare(executor)
                    )
                    arts[cell.scenario] = families[cell.scenario][0].art
                else:
                    arts[cell.scenario] = prepare(
                        cell.sub.scenario, device, executor=for_prepare(executor)
                    )
                prepared[cell.scenario] = time.perf_counter() - clock
        pending: dict[str, Pending] = {}
        jobs = []
        for cell in todo:
            if cell.scenario in streams or cell.scenario in families:
                continue
            watch.phase(f"{cell.scenario}: {cell.label}: inputs and training stage")
            p = start(
                cell.sub,
                arts[cell.scenario],
                device,
                root / cell.name,
                executor,
                inputs=root / "inputs" / cell.scenario,
            )
            pending[cell.name] = p
            jobs += [replace(job, key=f"{cell.name}/{job.key}") for job in p.jobs]
        by_name = {c.name: c for c in todo}

        def finish(cell: Cell) -> None:
            timings = {"prepare_seconds": prepared[cell.scenario]}
            _finish(
                cell, pending.pop(cell.name), arts[cell.scenario], uri, device, timings, figures
            )
            if not keep_work:
                shutil.rmtree(root / cell.name, ignore_errors=True)
            watch.cell_done(cell)

        for cell in todo:  # every seed's training stage failed: nothing to run
            if cell.name in pending and pending[cell.name].done:
                finish(cell)
        watch.phase("running")
        for outcome in executor.run(jobs, root):
            name, _, key = outcome.key.partition("/")
            cell = by_name[name]
            outcome = pending[name].accept(replace(outcome, key=key))
            watch.seed_done(cell, outcome)
            if pending[name].done:
                finish(cell)
        for cell in todo:
            if cell.scenario in streams:
                watch.phase(f"{cell.scenario}: {cell.label}: a stream of requests")
                result = run_stream(
                    cell.sub,
                    device,
                    stream=streams[cell.scenario],
                    executor=executor,
                    keep_work=keep_work,
                    work=root / cell.name,
                    timings={"prepare_seconds": prepared[cell.scenario]},
                    on_outcome=lambda o, cell=cell: watch.seed_done(cell, o),
                )
                _record(cell, result.evaluation, result.art, uri, figures)
                watch.cell_done(cell)
            elif cell.scenario in families:
                sets = families[cell.scenario]
                watch.phase(f"{cell.scenario}: {cell.label}: {len(sets)} forget sets")
                family = run_family(
                    cell.sub,
                    device,
                    prepared=sets,
                    executor=executor,
                    keep_work=keep_work,
                    timings={"prepare_seconds": prepared[cell.scenario]},
                    on_outcome=lambda o, cell=cell: watch.seed_done(cell, o),
                )
                # Its evaluation is the first set's, with the family's report: the
                # figures are the first set's, as `submit` draws them.
                _record(cell, family.evaluation, family.art, uri, figures)
                watch.cell_done(cell)
    finally:
        if not keep_work:
            shutil.rmtree(root, ignore_errors=True)
    return cells


def _finish(
    cell: Cell,
    pending: Pending,
    art: Artifacts,
    uri: str,
    device: str,
    timings: dict[str, float],
    figures: bool,
) -> None:
    """Evaluate a cell whose seeds are all back, draw its figures and record it, unless
    it landed on the board meanwhile (another grid)."""
    from .evaluate import evaluate

    evaluation = evaluate(cell.sub, art, pending.finish(), device, timings)
    _record(cell, evaluation, art, uri, figures)


def _requests(sub: Submission) -> int:
    """Jobs per seed: a stream's requests, a family's sets, else one."""
    if sub.scenario.family is not None:
        from .family import members

        return len(members(sub.scenario))
    stream = sub.scenario.stream
    return 1 if stream is None else stream.requests


def _record(cell: Cell, evaluation: Evaluation, art: Artifacts, uri: str, figures: bool) -> None:
    """Draw a cell's figures and record it, unless it landed on the board meanwhile."""
    from mu_bench.leaderboard import store

    with tempfile.TemporaryDirectory(prefix="mu-bench-figures-") as tmp:
        drawn = {}
        if figures:
            from mu_bench.leaderboard.figures import submission_figures

            drawn = submission_figures(Path(tmp), evaluation, art)
        landed = store.find_submission(uri, cell.scenario, cell.key)
        if landed is not None:
            cell.state, cell.run_id, cell.report = "landed meanwhile", landed, evaluation.report
            return
        report = store.record(evaluation.report, uri, figures=drawn, key=cell.key)
    cell.state, cell.run_id, cell.report = "recorded", report.run_id, report


def summary(cells: Iterable[Cell], uri: str) -> list[dict[str, Any]]:
    """One row per cell: scenario, method and parameters, where it stands, its status,
    seeds ok and headline metrics (read from the board for a cell that was already
    there)."""
    from mu_bench.leaderboard import store

    rows = []
    for cell in cells:
        row: dict[str, Any] = {
            "scenario": cell.scenario,
            "method": cell.label,
            "state": cell.state,
            "run_id": cell.run_id,
        }
        if cell.report is not None:
            r = cell.report
            row.update(status=r.status, seeds=f"{r.seeds_ok}/{len(r.seeds)}", metrics=r.metrics)
        elif cell.run_id is not None:
            run = store.client(uri).get_run(cell.run_id)
            row.update(
                status=run.data.tags.get("mu_bench.status"),
                seeds=run.data.tags.get("mu_bench.seeds_ok"),
                metrics=dict(run.data.metrics),
            )
        rows.append(row)
    return rows
