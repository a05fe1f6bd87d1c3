"""`mu-bench methods` and `mu-bench scenarios`: what is installed, from metadata."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..errors import MuBenchError, UsageError
from ..scenario import DEFAULT_SCENARIO
from .app import JsonOpt, app, emit_json, out, say


def describe(name: str) -> dict:
    """One method whole: where it comes from, its declarations, its fields (type,
    default, constraints, description) and its presets per setting, as its sandboxed
    worker reads them (`method.method_detail`): the plugin is never imported here."""
    from .. import registry
    from ..submission.plan import describe_method

    entry = registry.get(name)
    info = describe_method(entry, detail=True)
    if info.detail is None:  # not a Method at all
        raise UsageError(f"{entry.value} is not a mu_bench Method subclass")
    return {
        "name": name,
        "summary": info.summary,
        "distribution": entry.distribution,
        "version": entry.version,
        "entry_point": entry.value,
        **{k: v for k, v in info.detail.items() if k not in ("name", "summary")},
    }


def _print_method(d: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    stage = "no"
    if d["training_stage"]:
        keyed = ", ".join(d["train_fields"]) if d["train_fields"] is not None else "all fields"
        stage = f"yes, cached per seed and {keyed}"
    for key, value in (
        ("method", f"{d['name']}: {d['summary']}"),
        ("from", f"{d['distribution']} {d['version']} ({d['entry_point']})"),
        ("reads", d["reads"]),
        (
            "scope",
            d["scope"] + ("" if d["scope"] == "any" else " (out of scope on random forgetting)"),
        ),
        ("seed", "ignored on purpose: forget quality 0" if d["ignores_seed"] else "used"),
        ("budget", d["default_budget"] or "the scenario's"),
        ("training stage", stage),
    ):
        head.add_row(key, value)
    out.print(head)
    fields = Table(title="fields (--param name=value)", title_justify="left")
    for col in ("name", "type", "default", "constraints", "description"):
        fields.add_column(col, overflow="fold")
    for f in d["fields"]:
        fields.add_row(f["name"], f["type"], repr(f["default"]), f["constraints"], f["description"])
    if not d["fields"]:
        fields.add_row("(none)", "", "", "", "")
    out.print(fields)
    presets = Table(
        title="presets (a setting's values; --no-preset ignores them)", title_justify="left"
    )
    presets.add_column("setting")
    presets.add_column("values", overflow="fold")
    for key, values in d["presets"].items():
        presets.add_row(key, ", ".join(f"{k}={v!r}" for k, v in values.items()))
    if not d["presets"]:
        presets.add_row("(none)", "the field defaults everywhere")
    out.print(presets)
    if d["doc"]:
        out.print(Text(d["doc"]), soft_wrap=False)


@app.command()
def methods(
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="One method to describe: fields, defaults, presets, reads, scope."),
    ] = None,
    load: Annotated[
        bool,
        typer.Option(
            "--load",
            help="Import each plugin (in a sandboxed worker) to check it and show its fields.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List installed methods (from package metadata; nothing is imported without --load),
    or describe one (NAME). With --load, or for NAME, each plugin is imported in a
    sandboxed worker, never in this process; with --load, exit 1 when a plugin fails to
    import or is not a Method."""
    from rich.table import Table

    from .. import registry

    if name is not None:
        d = describe(name)
        if as_json:
            emit_json(d)
        else:
            _print_method(d)
        return

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
            from ..submission.plan import describe_method

            try:
                info = describe_method(entry)
                if info.problem and not info.fields:  # not a Method at all
                    raise UsageError(info.problem)
                row.update(
                    reads=info.reads,
                    scope=info.scope,
                    fields=info.fields_text,
                    training_stage=info.has_training_stage,
                )
            except MuBenchError as exc:
                row["warning"] = str(exc)
                say(f"warning: {exc}")
        rows.append(row)
    if as_json:
        emit_json(rows)
        if load and any("warning" in r for r in rows):
            sys.exit(1)
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
    if load and any("warning" in r for r in rows):
        sys.exit(1)


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
