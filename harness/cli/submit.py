"""`mu-bench submit`: plan -> prepare -> execute -> evaluate -> figures -> record (on a
scenario with a `[stream]`, its deletion requests one after another: `submission.stream`;
with a `[family]`, each forget set's submission, then one record: `submission.family`).

Ordered for a short wall clock (parts and numbers in `benchmarks/submit_breakdown.py`):
the checks that need no torch come first; then, before torch is imported here, the two
helper processes start, so that their imports overlap this process's own: the fork
server (CPU runs; its imports are the long pole: plan's description of the method and
seed 0 wait for it) and the store writer (`leaderboard/recorder.py`, MLflow); torch and
scikit-learn are imported here on a thread (`_WarmUp`) while plan waits. Each seed is
scored while the next one runs (`evaluate.Scorer`), the figures are drawn while the
writer records the rest, and the process leaves without the interpreter's shutdown
(`main.fast_exit`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..scenario import DEFAULT_SCENARIO
from .app import (
    BudgetOpt,
    DataRootOpt,
    DeviceOpt,
    ExecutorOpt,
    JobsOpt,
    JsonOpt,
    NoPresetOpt,
    ParamOpt,
    ScenarioOpt,
    SeedsOpt,
    TrackingOpt,
    app,
    emit_json,
    out,
    say,
    show_progress,
    use_data_root,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mu_bench.leaderboard.recorder import Recorder

    from ..registry import MethodEntry
    from ..scenario import Scenario
    from ..submission.report import Report

# Where `benchmarks/submit_breakdown.py` asks for every stage's time, figures and
# record included (the report's own timings end at evaluation): the stages' ends as
# epoch seconds ("marks"), each seed's arrival, the report's timings and the writer's,
# and how many fork servers started.
TIMINGS_ENV = "MU_BENCH_TIMINGS_FILE"


@app.command()
def submit(
    method: Annotated[str, typer.Argument(help="Method name (see `mu-bench methods`).")],
    scenario: ScenarioOpt = DEFAULT_SCENARIO,
    seeds: SeedsOpt = None,
    budget: BudgetOpt = None,
    param: ParamOpt = None,
    no_preset: NoPresetOpt = False,
    preset: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--preset",
            help="A preset file or name (`mu-bench tune` writes them) instead of the "
            "built-in preset; --param still wins.",
        ),
    ] = None,
    tracking_uri: TrackingOpt = None,
    device: DeviceOpt = "auto",
    data_root: DataRootOpt = None,
    jobs: JobsOpt = None,
    executor: ExecutorOpt = None,
    keep_work: Annotated[bool, typer.Option(help="Keep the workers' scratch folders.")] = False,
    figures: Annotated[
        bool, typer.Option(help="Draw the submission's figures and log them to its run.")
    ] = True,
    memory: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--memory", help="Memory cap per worker, e.g. 6GiB (default: the scenario's [limits])."
        ),
    ] = None,
    require_sandbox: Annotated[
        bool,
        typer.Option(
            "--require-sandbox",
            help="Refuse to run where no sandbox confines the workers (also "
            "$MU_BENCH_REQUIRE_SANDBOX=1, or a store set up with `server --require-sandbox`).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run METHOD on a scenario once per seed, score it, and record it on the leaderboard."""
    import gc

    from mu_bench.leaderboard import store

    from .. import device as devices
    from ..isolation.executor import check_executor
    from ..submission.plan import precheck

    marks = {"submit": time.time()}
    show_progress()
    use_data_root(data_root)
    if preset is not None and no_preset:
        from ..errors import UsageError

        raise UsageError("--preset and --no-preset exclude each other: give one")
    loaded, entry = precheck(method, scenario, seeds, budget)
    devices.check_name(device)
    check_executor(executor, jobs)
    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    mechanism = sandbox_mechanism(uri, require_sandbox)  # before any helper starts

    from mu_bench.leaderboard.recorder import Recorder

    from ..isolation.launch import prestart

    # A CPU fork server always: plan's sandboxed description of the method forks from it
    # here (a cluster's seeds fork from their own servers), and so do local CPU seeds.
    prestart("cpu")
    recorder = Recorder(urgent=mechanism == "none")  # see `sandbox_guard` below
    # torch's import makes about a million objects: no collection while they are made
    # (about 15% of its CPU time); frozen once prepared and the warm-up's imports done
    # (`_WarmUp.collect_when_done`), so that later collections skip them. As it was at
    # the end (for callers in the same process).
    collecting = gc.isenabled()
    gc.disable()
    warm = _WarmUp(figures)
    marks["helpers"] = time.time()
    try:
        # Unsandboxed, the store's own setting decides whether this submit may run, before
        # any plugin code does: the writer reads it (it imports MLflow anyway), while
        # this process and the fork server import torch.
        required = sandbox_guard(uri, require_sandbox, mechanism, recorder.settings)
        report, stages = _stages(
            recorder,
            warm,
            uri,
            _Request(
                method,
                loaded,
                entry,
                seeds,
                budget,
                param,
                no_preset,
                preset,
                device,
                keep_work,
                jobs,
                executor,
                memory,
                required,
            ),
            figures,
            marks,
        )
    except BaseException:
        recorder.abandon()
        raise
    finally:
        warm.leave_collector()  # as restored here, even if its imports end later
        gc.unfreeze()
        if collecting:
            gc.enable()
    marks["recorded"] = time.time()
    if os.environ.get(TIMINGS_ENV):
        from ..isolation.launch import server_pool

        stages.update(marks=marks, writer=recorder.timings, report=report.timings)
        stages["fork_servers"] = server_pool().started
        Path(os.environ[TIMINGS_ENV]).write_text(json.dumps(stages))
    if as_json:
        emit_json(report.to_json())
    else:
        from mu_bench.leaderboard.render import report_table  # pandas: only for the table

        out.print(report_table(report))
        say(f"recorded run {report.run_id} in {uri}")


class _WarmUp:
    """Imports torch, what scoring needs (scikit-learn) and, when `figures`, matplotlib's
    drawing, on a daemon thread started with the helpers: 3.0-3.4 s of CPU that plan
    no longer waits for (it needs none of them, and mostly waits meanwhile for the fork
    server to describe the method), and seed 0's model is scored as soon as it arrives.
    Third-party modules only, none of which imports the harness: whatever import lock
    the main thread holds is never one this thread waits for.

    Then one BLAS thread for this process: its BLAS calls are small (the attacks'
    one-feature fits), and OpenBLAS's second thread only spun, 0.8-1.0 s of CPU a digits
    submit taken from the workers (`threadpoolctl` is scikit-learn's own dependency). The
    scores are bit for bit the same (`benchmarks/same_scores.py`: 12 submissions)."""

    def __init__(self, figures: bool):
        import threading

        self._lock = threading.Lock()
        self._running, self._collect = True, False
        threading.Thread(
            target=self._imports, args=(figures,), name="mu-bench-warm-up", daemon=True
        ).start()

    def _imports(self, figures: bool) -> None:
        try:
            import torch  # noqa: F401
            from sklearn import linear_model, metrics, model_selection, svm  # noqa: F401
            from threadpoolctl import threadpool_limits

            threadpool_limits(1, user_api="blas")
            if figures:
                from mu_bench.leaderboard.figures import warm_up as warm_up_figures

                warm_up_figures()
        finally:
            with self._lock:
                self._running = False
                if self._collect:
                    _collect()

    def collect_when_done(self) -> None:
        """Freeze what exists and turn the collector on, now or, while the imports still
        run, once they end (their objects are made without collections too: 0.15-0.2 s
        of CPU less for scikit-learn's and matplotlib's)."""
        with self._lock:
            if self._running:
                self._collect = True
                return
        _collect()

    def leave_collector(self) -> None:
        """Cancel `collect_when_done`: the caller sets the collector itself."""
        with self._lock:
            self._collect = False


def _collect() -> None:
    import gc

    gc.freeze()
    gc.enable()


@dataclass(frozen=True)
class _Request:
    """The command's arguments that the stages take."""

    method: str
    scenario: Scenario
    entry: MethodEntry
    seeds: int | None
    budget: str | None
    param: list[str] | None
    no_preset: bool
    preset: str | None
    device: str
    keep_work: bool
    jobs: int | None
    executor: str | None
    memory: str | None  # --memory
    require_sandbox: bool  # resolved by `sandbox_guard`


def _stages(
    recorder: Recorder,
    warm: _WarmUp,
    uri: str,
    req: _Request,
    figures: bool,
    marks: dict[str, float],
) -> tuple[Report, dict]:
    """plan -> prepare -> execute -> evaluate -> figures -> record: the recorded report,
    and each seed's times for the timings file."""

    from mu_bench.leaderboard import store

    from ..method import parse_params
    from ..submission.plan import plan

    params = parse_params(req.param or [])
    sub = plan(
        req.method,
        req.scenario,
        req.seeds,
        req.budget,
        params,
        not req.no_preset,
        req.preset,
        entry=req.entry,
        memory=req.memory,
        require_sandbox=req.require_sandbox,
    )
    # Only now the modules that import torch (`_WarmUp` has been importing it while plan
    # waited for the method's description).
    from ..device import resolve_device
    from ..isolation.executor import close, for_prepare, make_executor
    from ..submission.evaluate import Scorer, evaluate
    from ..submission.execute import execute
    from ..submission.pipeline import work_folder
    from ..submission.prepare import prepare

    device = resolve_device(req.device)
    runs_on = make_executor(req.executor, req.jobs, device)
    marks["planned"] = time.time()
    clock = time.perf_counter()
    if sub.scenario.stream is not None:  # a stream of deletion requests
        return _stream(recorder, uri, sub, req, device, runs_on, figures), {"seeds": {}}
    if sub.scenario.family is not None:  # several forget sets
        return _family(recorder, uri, sub, req, device, runs_on, figures), {"seeds": {}}
    try:
        art = prepare(sub.scenario, device, executor=for_prepare(runs_on))
    except BaseException:
        close(runs_on)
        raise
    timings = {"prepare_seconds": time.perf_counter() - clock}
    marks["prepared"] = time.time()
    warm.collect_when_done()
    say(
        f"prepared {sub.scenario.name}: original + {len(art.gold)} gold models "
        f"(retrain {art.retrain_seconds:.2f} s)"
    )
    # Not before the data is known to exist, so that bad input writes no store.
    recorder.open(uri)
    scorer = Scorer(sub, art, device)
    arrivals: dict[int, float] = {}

    def arrived(outcome) -> None:
        arrivals[outcome.seed] = time.time()
        scorer.add(outcome)

    work = work_folder(sub)
    try:
        marks["execute"] = time.time()
        execution = execute(sub, art, device, work, runs_on, on_outcome=arrived)
        marks["executed"] = time.time()
        evaluation = evaluate(sub, art, execution, device, timings, scorer=scorer)
        marks["evaluated"] = time.time()
    finally:
        scorer.close()
        close(runs_on)
        if not req.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    recorder.begin(evaluation.report, key=store.key_of(sub, device))
    with tempfile.TemporaryDirectory(prefix="mu-bench-figures-") as tmp:
        drawn = _figures(Path(tmp), evaluation, art) if figures else {}
        marks["figures"] = time.time()
        report = recorder.finish(drawn)
    seeds = {
        str(o.seed): {
            "arrived": arrivals.get(o.seed),
            "startup": o.startup_seconds,
            "wall": o.wall_seconds,
            "unlearn": o.seconds,
        }
        for o in execution.outcomes
    }
    return report, {"seeds": seeds}


def _stream(recorder: Recorder, uri: str, sub, req: _Request, device: str, runs_on, figures: bool):
    """A scenario's stream of deletion requests (`submission.stream`), recorded."""
    from mu_bench.leaderboard import store

    from ..isolation.executor import close, for_prepare
    from ..submission.stream import prepare_stream, run_stream

    clock = time.perf_counter()
    try:
        stream = prepare_stream(sub.scenario, device, executor=for_prepare(runs_on))
        timings = {"prepare_seconds": time.perf_counter() - clock}
        say(
            f"prepared {sub.scenario.name}: original + {len(stream.prefixes)} deletion "
            f"requests, {len(stream.base.gold)} gold models after each"
        )
        recorder.open(uri)
        result = run_stream(
            sub, device, stream=stream, executor=runs_on, keep_work=req.keep_work, timings=timings
        )
    finally:
        close(runs_on)
    recorder.begin(result.evaluation.report, key=store.key_of(sub, device))
    with tempfile.TemporaryDirectory(prefix="mu-bench-figures-") as tmp:
        return recorder.finish(
            _figures(Path(tmp), result.evaluation, result.art) if figures else {}
        )


def _family(recorder: Recorder, uri: str, sub, req: _Request, device: str, runs_on, figures: bool):
    """A scenario's family of forget sets (`submission.family`), recorded as one
    submission; the figures are the first set's."""
    from mu_bench.leaderboard import store

    from ..isolation.executor import close, for_prepare
    from ..submission.family import prepare_family, run_family

    clock = time.perf_counter()
    try:
        prepared = prepare_family(sub.scenario, device, executor=for_prepare(runs_on))
        timings = {"prepare_seconds": time.perf_counter() - clock}
        cached = sum(all(m.cache_hit for m in p.art.models) for p in prepared)
        say(
            f"prepared {sub.scenario.name}: {len(prepared)} forget sets ({cached} from the "
            f"cache), original + {len(prepared[0].art.gold)} gold models each"
        )
        recorder.open(uri)
        result = run_family(
            sub,
            device,
            prepared=prepared,
            executor=runs_on,
            keep_work=req.keep_work,
            timings=timings,
        )
    finally:
        close(runs_on)
    recorder.begin(result.evaluation.report, key=store.key_of(sub, device))
    with tempfile.TemporaryDirectory(prefix="mu-bench-figures-") as tmp:
        first = result.members[0].evaluation
        return recorder.finish(_figures(Path(tmp), first, result.art) if figures else {})


def _figures(folder: Path, evaluation, art) -> dict[str, Path]:
    """The submission's figures, drawn into `folder` while the store writer logs the rest
    of the record (`Recorder.begin`)."""
    from mu_bench.leaderboard.figures import submission_figures

    return submission_figures(folder, evaluation, art)


def sandbox_mechanism(uri: str, flag: bool = False) -> str:
    """The mechanism this machine's workers run under (`policy.mechanism`; UsageError for
    a bad `$MU_BENCH_SANDBOX`). Keeps the store's folder out of every worker's reach:
    call it before any fork server starts. Where `flag` (--require-sandbox) or the user's
    `$MU_BENCH_REQUIRE_SANDBOX` asks for a sandbox and the mechanism is "none", refuses
    at once (UsageError), before any helper starts; the store's own setting is read later
    (`sandbox_guard`)."""
    from mu_bench.leaderboard import store

    from ..errors import UsageError
    from ..isolation import policy

    db = store.sqlite_path(uri)
    if db is not None:
        policy.forbid(db.parent)
    try:
        mechanism = policy.mechanism()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _refuse_if_demanded(flag, mechanism)
    return mechanism


def sandbox_guard(
    uri: str,
    flag: bool,
    mechanism: str,
    settings: Callable[[str], dict[str, str]] | None = None,
) -> bool:
    """Whether this submit must run sandboxed (`--require-sandbox`, the user's
    `$MU_BENCH_REQUIRE_SANDBOX`, or the store's own setting); raises UsageError, before
    anything is written or any plugin code runs, when it must and `mechanism` (from
    `sandbox_mechanism`, which refuses the first two itself) is "none". `settings` reads
    the store's settings, asked only then (default `store.settings`, which imports MLflow
    here)."""
    from mu_bench.leaderboard import store

    from ..isolation import policy

    if mechanism != "none":
        return flag or policy.env_requires_sandbox()
    _refuse_if_demanded(flag, mechanism)
    if store.requires_sandbox(uri, settings):
        raise _refusal(f"the store {uri} (setting {store.REQUIRE_SANDBOX})")
    say("no sandbox confines the workers here: the run is recorded unverified")
    return False


def _refuse_if_demanded(flag: bool, mechanism: str) -> None:
    """Refuse where `flag` (--require-sandbox) or the user's `$MU_BENCH_REQUIRE_SANDBOX`
    asks for a sandbox and `mechanism` is "none"."""
    from ..isolation import policy

    if mechanism == "none" and (flag or policy.env_requires_sandbox()):
        raise _refusal("--require-sandbox" if flag else f"${policy.REQUIRE_VAR}")


def _refusal(why: str) -> Exception:
    """The UsageError for a submit that `why` asks to run sandboxed, on a machine that
    offers no sandbox."""
    from ..errors import UsageError

    forced = "MU_BENCH_SANDBOX=none forces it off; " if os.environ.get("MU_BENCH_SANDBOX") else ""
    return UsageError(
        f"{why} asks for a sandbox, and this machine offers none ({forced}mu-bench needs "
        "Landlock, Linux 5.13 or later, or bubblewrap: apt-get install bubblewrap). "
        "Nothing was run or written."
    )
