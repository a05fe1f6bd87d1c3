"""`mu-bench submit`: plan -> prepare -> execute -> evaluate -> figures -> record (on a
scenario with a `[stream]`, its deletion requests one after another:
`submission.stream`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..scenario import DEFAULT_SCENARIO
from .app import (
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

# Where `benchmarks/submit_breakdown.py` asks for every stage's time, figures and
# record included (the report's own timings end at evaluation).
TIMINGS_ENV = "MU_BENCH_TIMINGS_FILE"


@app.command()
def submit(
    method: Annotated[str, typer.Argument(help="Method name (see `mu-bench methods`).")],
    scenario: ScenarioOpt = DEFAULT_SCENARIO,
    seeds: SeedsOpt = None,
    budget: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--budget", "-b", help="Seconds per unlearn() call, or N% of retrain time."),
    ] = None,
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
    as_json: JsonOpt = False,
) -> None:
    """Run METHOD on a scenario once per seed, score it, and record it on the leaderboard."""
    from mu_bench.leaderboard import store
    from mu_bench.leaderboard.render import report_table

    from ..device import resolve_device
    from ..isolation.executor import close, for_prepare, make_executor
    from ..method import parse_params
    from ..submission.evaluate import evaluate
    from ..submission.execute import execute
    from ..submission.pipeline import work_folder
    from ..submission.plan import plan
    from ..submission.prepare import prepare

    show_progress()
    use_data_root(data_root)
    if preset is not None and no_preset:
        from ..errors import UsageError

        raise UsageError("--preset and --no-preset exclude each other: give one")
    sub = plan(method, scenario, seeds, budget, parse_params(param or []), not no_preset, preset)
    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    device = resolve_device(device)
    runs_on = make_executor(executor, jobs, device)

    clock = time.perf_counter()
    try:
        if sub.scenario.stream is not None:  # a stream of deletion requests
            from ..submission.stream import prepare_stream, run_stream

            stream = prepare_stream(sub.scenario, device, executor=for_prepare(runs_on))
            timings = {"prepare_seconds": time.perf_counter() - clock}
            say(
                f"prepared {sub.scenario.name}: original + {len(stream.prefixes)} deletion "
                f"requests, {len(stream.base.gold)} gold models after each"
            )
            store.open_in_background(uri)
            result = run_stream(
                sub, device, stream=stream, executor=runs_on, keep_work=keep_work, timings=timings
            )
            evaluation, art = result.evaluation, result.art
        else:
            art = prepare(sub.scenario, device, executor=for_prepare(runs_on))
            timings = {"prepare_seconds": time.perf_counter() - clock}
            say(
                f"prepared {sub.scenario.name}: original + {len(art.gold)} gold models "
                f"(retrain {art.retrain_seconds:.2f} s)"
            )
            # MLflow's start-up (seconds) overlaps the seeds; not before the data is known
            # to exist, so that bad input writes no store.
            store.open_in_background(uri)
            work = work_folder(sub)
            try:
                execution = execute(sub, art, device, work, runs_on)
                evaluation = evaluate(sub, art, execution, device, timings)
            finally:
                if not keep_work:
                    shutil.rmtree(work, ignore_errors=True)
    finally:
        close(runs_on)
    with tempfile.TemporaryDirectory(prefix="mu-bench-figures-") as tmp:
        clock = time.perf_counter()
        drawn = {}
        if figures:
            from mu_bench.leaderboard.figures import submission_figures

            drawn = submission_figures(Path(tmp), evaluation, art)
        figures_seconds = time.perf_counter() - clock
        report = store.record(evaluation.report, uri, figures=drawn, key=store.key_of(sub, device))
    if os.environ.get(TIMINGS_ENV):
        stages = {
            **report.timings,
            "figures_seconds": figures_seconds,
            "record_seconds": time.perf_counter() - clock - figures_seconds,
        }
        Path(os.environ[TIMINGS_ENV]).write_text(json.dumps(stages))
    if as_json:
        emit_json(report.to_json())
    else:
        out.print(report_table(report))
        say(f"recorded run {report.run_id} in {uri}")
