"""`mu-bench show RUN`: one submission whole, read back from the store: who and what
(method, distribution, scenario, device, budget), the parameters it ran with (marking
what differs from the method's defaults with the scenario's preset), the preset, the
metrics beside gold and original, each seed's status and cost, the tracebacks of the
seeds that failed, and the notes. RUN is a run id or a unique prefix of one (the
board's `--wide` and `--json` give them)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UsageError
from .app import JsonOpt, TrackingOpt, app, emit_json, out


def find_run(uri: str, ref: str) -> tuple[str, str]:
    """(run id, scenario) of the submission `ref` names (a run id or a unique prefix of
    at least 4 characters); UsageError naming what is valid otherwise."""
    from mu_bench.leaderboard import ranking, store

    ref = ref.strip().lower()
    db = store.sqlite_path(uri)
    scenarios = ranking.scenarios(uri) if db is None or db.exists() else []
    matches = []
    for name in scenarios:
        runs = ranking.load(uri, name)
        if not runs.empty:
            matches += [(r, name) for r in runs["run_id"] if r.startswith(ref)]
    if len(ref) < 4 and len(matches) != 1 or not matches:
        raise UsageError(
            f"no submission '{ref}' in {uri}: give a run id or a unique prefix of one (at least "
            "4 characters), as `mu-bench leaderboard --wide` or `--json` print them"
        )
    if len(matches) > 1:
        ids = ", ".join(m[0][:12] for m in matches[:5])
        raise UsageError(
            f"'{ref}' matches {len(matches)} submissions ({ids}, ...): give more of it"
        )
    return matches[0]


def _traceback(c, run_id: str, seed: int) -> str | None:
    """A failed seed's traceback (its seed run's `error.txt`)."""
    import contextlib

    found = c.search_runs(
        [c.get_run(run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}' and tags.mu_bench.seed = '{seed}'",
        max_results=1,
    )
    if not found:
        return None
    with contextlib.suppress(Exception):
        path = c.download_artifacts(found[0].info.run_id, "error.txt")
        with open(path) as fh:
            return fh.read()
    return None


@app.command()
def show(
    run: Annotated[str, typer.Argument(help="Run id, or a unique prefix of one.")],
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print one submission whole: parameters, preset, per-seed status, tracebacks, notes."""
    import json

    from rich.table import Table

    from mu_bench.leaderboard import store
    from mu_bench.leaderboard.render import report_table, seconds_text
    from mu_bench.submission.report import Report, SeedReport

    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    run_id, scenario = find_run(uri, run)
    c = store.client(uri)
    with open(c.download_artifacts(run_id, "report.json")) as fh:
        doc = json.load(fh)
    tracebacks = {
        s["seed"]: _traceback(c, run_id, s["seed"]) for s in doc["seeds"] if s["status"] != "ok"
    }
    if as_json:
        emit_json({**doc, "tracebacks": {str(k): v for k, v in tracebacks.items()}})
        return
    fields = set(Report.__dataclass_fields__)
    body = {k: v for k, v in doc.items() if k in fields and k != "seeds"}
    report = Report(**body, seeds=tuple(SeedReport(**s) for s in doc["seeds"]))
    overrides = report.overrides
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    for key, value in (
        ("run", run_id),
        ("method", f"{report.method} ({report.distribution} {report.version})"),
        ("scenario", f"{scenario} (hash {report.scenario_hash[:12]})"),
        ("status", f"{report.status}: {report.seeds_ok}/{len(report.seeds)} seeds ok"),
        ("preset", report.preset or "none"),
        ("budget", f"{report.budget_seconds:g} s per seed on {report.device}"),
        ("versions", f"mu-bench {report.harness_version}, torch {report.torch_version}"),
    ):
        head.add_row(key, value)
    out.print(head)
    params = Table(title="parameters used", title_justify="left")
    for col in ("name", "value", ""):
        params.add_column(col, overflow="fold")
    for name, value in report.params.items():
        mark = "changed from the preset/defaults" if name in overrides else ""
        params.add_row(name, json.dumps(value), mark)
    if not report.params:
        params.add_row("(none)", "", "")
    out.print(params)
    seeds = Table(title="seeds", title_justify="left")
    for col in ("seed", "status", "unlearn", "wall", "error"):
        seeds.add_column(col, overflow="fold")
    for s in report.seeds:
        first = (s.error or "").strip().splitlines()[0] if s.error else ""
        seeds.add_row(
            str(s.seed),
            s.status,
            seconds_text(s.unlearn_seconds),
            seconds_text(s.wall_seconds),
            first,
        )
    out.print(seeds)
    out.print(report_table(report, extras=False))
    for seed, text in tracebacks.items():
        out.print(f"\n--- seed {seed}: traceback ---", style="bold")
        out.print(text or "(none recorded)", markup=False, highlight=False)
