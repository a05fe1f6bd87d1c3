"""The MLflow UI as the leaderboard: `mu-bench ui`.

`publish` saves, on every mu-bench experiment of a store, the board's view of the runs
table (MLflow's shared view state, `store.view_state`: submissions only, sorted by the
board's ranking metric, the headline metrics as visible columns) and returns, per
scenario, the link that opens it (`#/experiments/ID/runs?viewStateShareKey=...`).
`charts_link` opens the same runs as MLflow's charts, to compare them. `serve` starts a
light `mlflow server` on the store (one worker, MLflow's job runner off:
`server.start_mlflow`), measures how long it takes to answer, prints the links, and
stops it on Ctrl-C or SIGTERM. `benchmarks/ui_startup.py`, on two loaded cores: the old
`mlflow ui` with MLflow's defaults answered after 155 s (15 processes, 1.7 GiB),
`mu-bench ui` after 59 s (3 processes, 0.7 GiB); on a quiet machine 34 s / 3.2 GiB
against 13 s / 0.5 GiB (ENVIRONMENT.md).
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from mu_bench.errors import UsageError

from . import ranking, store


def link(base_url: str, experiment_id: str) -> str:
    """The link that opens an experiment on the board's saved view of its runs table."""
    query = f"viewStateShareKey={quote(store.VIEW_KEY)}&workflowType=machine_learning"
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def charts_link(board_link: str) -> str:
    """The same view as charts, to compare runs: a section per metric group, the headline
    first (`catalogue.stored`), a bar per submission in the board's order."""
    return board_link + "&compareRunsMode=CHART"


def link_lines(links: dict[str, str]) -> list[str]:
    """What `mu-bench ui` prints per scenario: the ranked table, then its charts."""
    lines = []
    for name, address in links.items():
        lines += [f"  {name}: {address}", f"  {name} (charts): {charts_link(address)}"]
    return lines


def publish(uri: str, base_url: str) -> dict[str, str]:
    """Save the board's view on each scenario's experiment; {scenario: link}."""
    db = store.sqlite_path(uri)
    if db is not None and not db.exists():
        return {}
    c = store.client(uri)
    links = {}
    for name in ranking.scenarios(uri):
        exp = c.get_experiment_by_name(store.experiment_name(name))
        board = ranking.table(ranking.load(uri, name))
        rank_by = ranking.rank_metric(board) if not board.empty else "score_norm"
        store.publish_view(c, exp, rank_by)
        links[name] = link(base_url, exp.experiment_id)
    return links


def _check_port(port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(
                f"--port {port}: 127.0.0.1:{port} is in use; give another port (e.g. --port "
                f"{port + 1})"
            ) from None


def serve(
    uri: str,
    port: int,
    workers: int,
    say: Callable[[str], None],
    show: Callable[[str], None],
) -> None:
    """Start the UI on 127.0.0.1:`port` over `uri`, print the board links, and run until
    SIGINT or SIGTERM."""
    from .server import start_mlflow

    _check_port(port)
    db = store.sqlite_path(uri)
    artifacts = (db.parent if db else Path(store.home())) / "artifacts"
    url = f"http://127.0.0.1:{port}"
    links = publish(uri, url)  # before the server starts: the views exist when it answers
    say(f"starting the MLflow UI over {uri} ({workers} worker{'s' * (workers > 1)})")
    clock = time.monotonic()
    server = start_mlflow(uri, str(artifacts), port=port, workers=workers)
    answered = time.monotonic() - clock
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        show(f"MLflow UI on {url} (first answer after {answered:.1f} s)")
        for line in link_lines(links):
            show(line)
        if not links:
            show("  no submissions yet: `mu-bench submit finetune`, then reload")
        say("Ctrl-C stops it")
        server.proc.wait()
    except KeyboardInterrupt:
        say("stopping")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
