"""`mu-bench leaderboard` and `mu-bench ui`: read the store."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .app import JsonOpt, TrackingOpt, app, emit_json, out, say


@app.command()
def leaderboard(
    scenario: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="Scenario (default: every scenario with submissions)."),
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Every submission, not only the latest per method.")
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
    """Print the ranked leaderboard of a scenario (or of every scenario)."""
    from mu_bench.leaderboard import ranking, render, store

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
        import pandas as pd

        frames = [t.assign(scenario=n) for n, t in tables.items()]
        sys.stdout.write(pd.concat(frames).to_csv(index=False) if frames else "")
    elif as_markdown:
        sys.stdout.write(render.markdown_boards(tables))
    else:
        if not tables:
            say(f"no submissions yet in {uri}; try `mu-bench submit finetune`")
        for n, t in tables.items():
            out.print(render.rich_table(f"leaderboard: {n}", render.leaderboard_rows(t)))


@app.command()
def ui(
    tracking_uri: TrackingOpt = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Start the MLflow UI on 127.0.0.1 over the leaderboard store."""
    from mu_bench.leaderboard import store

    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    say(f"MLflow UI on http://127.0.0.1:{port} over {uri}")
    os.execv(sys.executable, cmd)
