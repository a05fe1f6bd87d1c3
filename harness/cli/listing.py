"""`mu-bench methods` and `mu-bench scenarios`: what is installed, from metadata."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import MuBenchError, UsageError
from ..scenario import DEFAULT_SCENARIO
from .app import JsonOpt, app, emit_json, out, say


@app.command()
def methods(
    load: Annotated[
        bool, typer.Option("--load", help="Import each plugin to check it and show its fields.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List installed methods (from package metadata; nothing is imported without --load)."""
    from rich.table import Table

    from .. import registry
    from ..method import Method

    rows = []
    for name, entry in registry.discover().items():
        row = {
            "name": name,
            "summary": entry.summary(),
            "distribution": entry.distribution,
            "version": entry.version,
            "entry_point": entry.value,
        }
        if load:
            try:
                cls = entry.load()
                if not (isinstance(cls, type) and issubclass(cls, Method)):
                    raise UsageError(f"{entry.value} is not a mu_bench Method subclass")
                row.update(reads=cls.reads, scope=cls.scope, fields=cls.describe_fields())
            except MuBenchError as exc:
                row["warning"] = str(exc)
                say(f"warning: {exc}")
        rows.append(row)
    if as_json:
        emit_json(rows)
        return
    table = Table(title="mu-bench methods", title_justify="left")
    for col in ("name", "summary", "distribution", "version") + (
        ("reads", "fields") if load else ()
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        cells = [r["name"], r["summary"], r["distribution"], r["version"]]
        if load:
            cells += [r.get("reads", "-"), r.get("fields", r.get("warning", ""))]
        table.add_row(*cells)
    out.print(table)


@app.command()
def scenarios(as_json: JsonOpt = False) -> None:
    """List the built-in scenarios with a one-line description."""
    from rich.table import Table

    from ..scenario import builtin_names, load

    rows = []
    for name in builtin_names():
        s = load(name)
        forget = s.forget.describe()
        rows.append(
            {
                "name": name,
                "summary": s.summary,
                "dataset": s.data.dataset,
                "arch": s.model.arch,
                "forget": forget,
                "gold_seeds": s.gold.seeds,
                "gold_ceiling": s.gold.ceiling,
                "lira_in_models": s.lira.in_models,
                "budget_seconds": s.budget.seconds,
                "provenance": s.provenance,
                "default": name == DEFAULT_SCENARIO,
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table(title="mu-bench scenarios", title_justify="left")
    for col in ("name", "summary", "data / model", "forget", "gold", "budget"):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "")
        table.add_row(
            name,
            r["summary"],
            f"{r['dataset']} / {r['arch']}",
            r["forget"],
            str(r["gold_seeds"]),
            f"{r['budget_seconds']:g} s",
        )
    out.print(table)
    # Provenance is prose (whose split, whose recipe): a wrapped paragraph per scenario
    # reads better than a narrow column.
    from rich.text import Text

    out.print("\nprovenance", style="bold")
    for r in rows:
        out.print(Text.assemble((r["name"], "bold"), ": ", r["provenance"] or "-"))
