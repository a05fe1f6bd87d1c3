"""`mu-bench leaderboard` and `mu-bench ui`: read the store (`show.py`: one submission)."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .app import JsonOpt, TrackingOpt, app, emit_json, out, say

BOARD_WIDTH = 100


def board_console(wide: bool):
    """The board's console: at most 100 columns by default ($COLUMNS or the terminal, if
    narrower); `--wide` is never squeezed (its lines are as long as its columns)."""
    from rich.console import Console

    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() else None
    if width is None and sys.stdout.isatty():
        width = shutil.get_terminal_size().columns
    if wide:
        return Console(highlight=False, width=max(width or 0, 300))  # never squeezed
    return Console(highlight=False, width=min(width or BOARD_WIDTH, BOARD_WIDTH))


@app.command()
def leaderboard(
    scenario: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="Scenario (default: every scenario with submissions)."),
    ] = None,
    scenario_opt: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--scenario", "-s", help="The same as SCENARIO (as `submit -s` takes it)."),
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Every submission, not only the latest per method.")
    ] = False,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide", help="Every metric with its spread, status and run id (not 100 columns)."
        ),
    ] = False,
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown.")] = False,
    plot: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--plot",
            help="Also draw score (or avg_gap) against unlearn seconds, Pareto front marked, "
            "into this image file (.png, .pdf or .svg); needs one SCENARIO.",
        ),
    ] = None,
) -> None:
    """Print the ranked leaderboard of a scenario (or of every scenario): the headline
    columns in 100 characters, `--wide` for every metric; `mu-bench show RUN` prints one
    submission whole."""
    from mu_bench.leaderboard import ranking, render, store

    formats = [
        f for f, on in (("--json", as_json), ("--csv", as_csv), ("--markdown", as_markdown)) if on
    ]
    if len(formats) > 1:
        raise UsageError(f"{' and '.join(formats)} exclude each other: give one of them")
    if scenario is not None and scenario_opt is not None and scenario != scenario_opt:
        raise UsageError(
            f"two scenarios given ('{scenario}' and -s '{scenario_opt}'): give one of them"
        )
    scenario = scenario if scenario is not None else scenario_opt
    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    db = store.sqlite_path(uri)
    known = ranking.scenarios(uri) if db is None or db.exists() else []
    if scenario is not None and scenario not in known:
        from ..errors import did_you_mean

        raise UsageError(
            f"no submissions for scenario '{scenario}' in {uri}.{did_you_mean(scenario, known)} "
            f"Scenarios with submissions: {', '.join(known) or '(none)'}"
        )
    names = [scenario] if scenario else known
    if plot is not None:
        from pathlib import Path

        if len(names) != 1:
            raise UsageError(
                "--plot draws one scenario: give SCENARIO "
                f"(scenarios with submissions: {', '.join(known) or '(none)'})"
            )
        if Path(plot).suffix.lower() not in (".png", ".pdf", ".svg"):
            raise UsageError(f"--plot {plot}: give a file name ending in .png, .pdf or .svg")
        if not Path(plot).absolute().parent.is_dir():
            raise UsageError(f"--plot {plot}: folder {Path(plot).absolute().parent} does not exist")
    tables = {n: ranking.table(ranking.load(uri, n), latest_only=not all_runs) for n in names}
    if plot is not None:
        from mu_bench.leaderboard.figures import pareto_plot

        (name,) = names
        metric = ranking.rank_metric(tables[name])
        pareto_plot(tables[name], metric, Path(plot), f"leaderboard: {name}")
        say(f"plotted {metric} against unlearn seconds into {plot}")
    if as_json:
        emit_json({n: render.records(t) for n, t in tables.items()})
    elif as_csv:
        sys.stdout.write(render.csv_frame(tables).to_csv(index=False))
    elif as_markdown:
        sys.stdout.write(render.markdown_boards(tables, wide=wide))
    else:
        if not tables:
            say(f"no submissions yet in {uri}; try `mu-bench submit finetune`")
        console = board_console(wide)
        for n, t in tables.items():
            console.print(render.rich_table(f"leaderboard: {n}", render.board_rows(t, wide)))
        if tables and not wide:
            say("mu-bench show RUN: one submission whole (run ids: --wide or --json)")


@app.command()
def ui(
    tracking_uri: TrackingOpt = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="MLflow server workers (1, with MLflow's job runner off, answers soonest "
            "and holds about 0.5 GB).",
        ),
    ] = 1,
) -> None:
    """Start the MLflow UI on 127.0.0.1 over the leaderboard store and print a link per
    scenario that opens its ranked runs table (submissions, headline metric columns)."""
    from mu_bench.leaderboard import store, uiboard

    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    if uri.startswith(("http://", "https://")):
        # A running server: nothing to start; save the views there and link to them.
        for line in uiboard.link_lines(uiboard.publish(uri, uri)):
            out.print(line.strip(), markup=False, soft_wrap=True)
        return
    uiboard.serve(
        uri, port, workers, say, lambda text: out.print(text, markup=False, soft_wrap=True)
    )
