"""`mu-bench server`: an MLflow tracking server for a team (PostgreSQL or SQLite, an
artifact root, 127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .app import JsonOpt, app, emit_json, say


@app.command()
def server(
    backend_store_uri: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Database of the board: sqlite:///PATH.db or postgresql://USER@HOST:PORT/DB "
            "(default: SQLite in $MU_BENCH_HOME/server/).",
        ),
    ] = None,
    postgres_dir: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Initialise (first time) and start a private PostgreSQL in this folder, on "
            "127.0.0.1, as the board's database.",
        ),
    ] = None,
    artifacts_destination: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Artifact root: a folder or a URI (default: beside the database)."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 for every interface.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server worker processes (each about 0.4 GB).")
    ] = 1,
    allowed_hosts: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Host headers to accept, comma-separated (MLflow's --allowed-hosts)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start an MLflow tracking server for a team and print the URI `--tracking-uri` takes."""
    from mu_bench.leaderboard import server as srv

    request = srv.plan(
        backend_store_uri=backend_store_uri,
        postgres_dir=postgres_dir,
        artifacts_destination=artifacts_destination,
        host=host,
        port=port,
        workers=workers,
        allowed_hosts=allowed_hosts,
    )

    def ready(info: dict) -> None:
        if as_json:
            emit_json(info)
        else:
            sys.stdout.write(info["tracking_uri"] + "\n")
        sys.stdout.flush()

    srv.serve(request, on_ready=ready, say=say)
