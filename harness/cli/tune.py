"""`mu-bench tune`: fair tuning (`submission.tune`) -> a preset file with its provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..scenario import DEFAULT_SCENARIO
from .app import (
    BudgetOpt,
    DataRootOpt,
    DeviceOpt,
    ExecutorOpt,
    JobsOpt,
    JsonOpt,
    ParamOpt,
    ScenarioOpt,
    app,
    emit_json,
    say,
    show_progress,
    use_data_root,
)


@app.command()
def tune(
    method: Annotated[str, typer.Argument(help="Method name (see `mu-bench methods`).")],
    scenario: ScenarioOpt = DEFAULT_SCENARIO,
    trials: Annotated[int, typer.Option("--trials", "-t", help="Optuna trials.")] = 20,
    space: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--space",
            help="A searched field, name=float:LOW:HIGH, log:LOW:HIGH, int:LOW:HIGH or "
            "choice:A,B,C (repeatable; default: the method's search_space).",
        ),
    ] = None,
    param: ParamOpt = None,
    seeds: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--seeds", "-n", help="Seeds per trial (default 3)."),
    ] = None,
    budget: BudgetOpt = None,
    objective: Annotated[
        str, typer.Option(help="avg_gap (minimised) or score_norm (maximised).")
    ] = "avg_gap",
    draw: Annotated[
        int, typer.Option(help="The tuning forget set: draw 1, 2, ... (0 is the evaluation set).")
    ] = 1,
    sampler_seed: Annotated[int, typer.Option(help="Seed of Optuna's TPE sampler.")] = 0,
    out_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--out",
            help="Preset file to write (default: $MU_BENCH_HOME/presets/METHOD-SCENARIO.json).",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    data_root: DataRootOpt = None,
    jobs: JobsOpt = None,
    executor: ExecutorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tune METHOD on a forget set disjoint from the scenario's own, against gold models
    of that set only, and write the best parameters as a preset with their provenance."""
    from ..device import resolve_device
    from ..errors import UsageError
    from ..isolation.executor import close, for_prepare, make_executor
    from ..method import parse_params
    from ..submission import tune as tuning

    show_progress()
    use_data_root(data_root)
    given = parse_params(space or []) if space else None
    req = tuning.plan_tune(
        method,
        scenario,
        trials,
        space=given,
        fixed=parse_params(param or []),
        seeds=seeds,
        budget=budget,
        objective=objective,
        draw=draw,
        sampler_seed=sampler_seed,
    )
    if out_file is not None and not out_file.absolute().parent.is_dir():
        raise UsageError(f"--out {out_file}: folder {out_file.absolute().parent} does not exist")
    device = resolve_device(device)
    runs_on = make_executor(executor, jobs, device)
    say(
        f"tuning {method} on {req.tuning.name} ({req.tuning.forget.describe()}; the evaluation "
        f"set {req.scenario.forget.describe()} is not read): {trials} trials of {req.seeds} seeds, "
        f"{req.objective}"
    )

    def heard(number: int, params: dict, value: float, status: str) -> None:
        say(f"trial {number}: {params} -> {req.objective} {value:.4f} ({status})")

    try:
        doc = tuning.tune(
            req, device, executor=runs_on, prepare_executor=for_prepare(runs_on), on_trial=heard
        )
    finally:
        close(runs_on)
    path = tuning.write(doc, out_file)
    prov = doc["provenance"]
    say(
        f"best {req.objective} {prov['objective']['best']:.4f} with {doc['params']} "
        f"({prov['trials_ok']}/{prov['trials']} trials ok, {prov['seconds']:.1f} s); "
        f"wrote {path}: `mu-bench submit {method} --scenario {req.scenario.name} --preset {path}`"
    )
    if as_json:
        emit_json({**doc, "path": str(path)})
