"""`mu-bench grid`: methods x scenarios x seeds through one executor, one submission per
(method, parameters, scenario) on the board, with a progress display and a summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .app import (
    BudgetOpt,
    DataRootOpt,
    DeviceOpt,
    ExecutorOpt,
    JobsOpt,
    JsonOpt,
    NoPresetOpt,
    SeedsOpt,
    TrackingOpt,
    app,
    emit_json,
    err,
    out,
    say,
    show_progress,
    use_data_root,
)

if TYPE_CHECKING:
    from rich.table import Table

HEADLINE = ("score_norm", "forget_quality_norm", "avg_gap", "test_acc", "unlearn_seconds")


@app.command()
def grid(
    file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(help="A grid file (TOML): methods with parameter sets, scenarios, seeds."),
    ] = None,
    methods: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--methods", "-m", help="Comma-separated method names."),
    ] = None,
    scenarios: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--scenarios", "-s", help="Comma-separated scenario names or .toml paths."),
    ] = None,
    seeds: SeedsOpt = None,
    budget: BudgetOpt = None,
    no_preset: NoPresetOpt = False,
    jobs: JobsOpt = None,
    executor: ExecutorOpt = None,
    tracking_uri: TrackingOpt = None,
    device: DeviceOpt = "auto",
    data_root: DataRootOpt = None,
    figures: Annotated[
        bool, typer.Option(help="Draw each submission's figures and log them to its run.")
    ] = True,
    keep_work: Annotated[bool, typer.Option(help="Keep the workers' scratch folders.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a grid of methods x scenarios x seeds and record one submission per (method,
    parameters, scenario); what is already on the board is skipped, so a grid stopped
    half-way finishes when started again."""
    from mu_bench.leaderboard import store

    from ..device import resolve_device
    from ..isolation.executor import close, make_executor
    from ..submission.grid import grid_spec, plan_grid, run_grid, summary
    from .submit import sandbox_guard, sandbox_mechanism

    show_progress()
    use_data_root(data_root)
    spec = grid_spec(file, methods, scenarios, seeds, budget, no_preset)
    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    required = sandbox_guard(uri, False, sandbox_mechanism(uri))  # the user's or the store's
    device = resolve_device(device)
    cells = plan_grid(spec, device, require_sandbox=required)
    runs_on = make_executor(executor, jobs, device)
    try:
        with _Progress() as progress:
            run_grid(
                cells,
                uri,
                device,
                runs_on,
                figures=figures,
                keep_work=keep_work,
                observer=progress,
            )
    finally:
        close(runs_on)
    rows = summary(cells, uri)
    if as_json:
        emit_json({"tracking_uri": uri, "cells": rows})
    else:
        out.print(summary_table(rows))
        recorded = sum(r["state"] == "recorded" for r in rows)
        say(f"{recorded} of {len(rows)} submissions recorded now, in {uri}")


class _Progress:
    """The grid's progress on stderr: seeds and submissions done over the whole grid
    (a live display on a terminal, off otherwise), and a line per finished submission."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.live = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not err.is_terminal,
            transient=True,
        )
        self._phase = self.live.add_task("starting", total=None)
        self._seeds = self._cells = None

    def __enter__(self) -> _Progress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)

    def started(self, cells, seeds_to_run: int) -> None:
        todo = sum(c.state == "to run" for c in cells)
        say(
            f"grid: {len(cells)} submissions, {len(cells) - todo} already on the board, "
            f"{todo} to run ({seeds_to_run} seeds)"
        )
        self._seeds = self.live.add_task("seeds", total=seeds_to_run)
        self._cells = self.live.add_task("submissions recorded", total=todo)

    def phase(self, text: str) -> None:
        self.live.update(self._phase, description=text[:34])

    def seed_done(self, cell, outcome) -> None:
        self.live.advance(self._seeds)

    def cell_done(self, cell) -> None:
        self.live.advance(self._cells)
        report = cell.report
        status = f"{report.status} {report.seeds_ok}/{len(report.seeds)}" if report else "-"
        say(f"{cell.scenario} {cell.label}: {status}, {cell.state} ({cell.run_id})")


def _number(value: Any) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return f"{value:.3f}"
    return "-"


def summary_table(rows: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(title="grid", show_lines=False)
    for name in ("scenario", "method", "state", "status", "seeds", *HEADLINE, "run"):
        table.add_column(name, justify="right" if name in HEADLINE else "left")
    for r in rows:
        metrics = r.get("metrics") or {}
        table.add_row(
            r["scenario"],
            r["method"],
            r["state"],
            str(r.get("status") or "-"),
            str(r.get("seeds") or "-"),
            *(_number(metrics.get(m)) for m in HEADLINE),
            (r["run_id"] or "-")[:12],
        )
    return table
