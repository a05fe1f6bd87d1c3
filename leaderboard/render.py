"""Render leaderboards and reports: rich tables for terminals, JSON, CSV, Markdown."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
from rich.table import Table

from mu_bench.evaluation.catalogue import (
    BOARD,
    METHOD_PREFIX,
    SHOWN,
    STAGE_SHOWN,
    STREAM_SHOWN,
    digits,
    label,
    of_level,
)

# The terminal and Markdown tables show `SHOWN` (what fits in 160 columns); `--json` and
# `--csv` carry every metric of the board (the loss MIA, LiRA's TPRs, score_norm, ...).


def _is_extra(column: str) -> bool:
    return column in STAGE_SHOWN or column in STREAM_SHOWN or column.startswith(METHOD_PREFIX)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: Any, std: Any = None, digits: int = 3, sep: str = " ± ") -> str:
    if _missing(value):
        return "-"
    if isinstance(value, float):
        text = f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"
        if not _missing(std):
            text += f"{sep}{std:.{digits}f}"
        return text
    return str(value)


# The board's "params" column: where a submission's parameters came from.
_SHORT_SOURCE = {"fair-tuning": "tuned", "fair-tuning+user": "tuned+user"}


def _source(value: Any) -> str:
    return "-" if _missing(value) else _SHORT_SOURCE.get(value, str(value))


def leaderboard_rows(df: pd.DataFrame) -> list[dict[str, str]]:
    extras = [
        c for c in df.columns if _is_extra(c) and not c.endswith("_std") and df[c].notna().any()
    ]
    rows = []
    for _, r in df.iterrows():
        status = r["status"] + ("" if r.get("in_scope", "true") != "false" else ", out of scope")
        row = {
            "#": "" if pd.isna(r["rank"]) else str(r["rank"]),
            "method": r["method"],
            "status": status,
            "seeds": r["seeds"],
            "params": _source(r.get("params_from")),
        }
        for m in SHOWN:
            row[label(m)] = fmt(r.get(m), r.get(f"{m}_std"), digits(m), sep="±")
        if not _missing(r.get("forget_quality_ceiling")) and not _missing(r.get("forget_quality")):
            row[label("forget_quality")] += f" / {r['forget_quality_ceiling']:.3f}"
        for m in extras:
            row[label(m)] = fmt(r.get(m), r.get(f"{m}_std"), digits(m), sep="±")
        rows.append(row)
    return rows


def rich_table(title: str, rows: list[dict[str, str]]) -> Table:
    from rich import box

    # A rule under the header only: the board keeps its columns in 160 characters.
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for col in rows[0] if rows else ["#", "method", "status"]:
        table.add_column(col, justify="right" if col not in ("method", "status") else "left")
    for row in rows:
        table.add_row(*row.values())
    return table


def markdown(rows: list[dict[str, str]]) -> str:
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "(no submissions)"


def markdown_boards(tables: dict[str, pd.DataFrame]) -> str:
    """A `### scenario` heading and a Markdown table per scenario (`--markdown`)."""
    return "".join(f"### {n}\n\n{markdown(leaderboard_rows(t))}\n\n" for n, t in tables.items())


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = ["rank", "method", "status", "seeds", "in_scope", "version", "params", "run_id"]
    cols += [c for c in ("params_from", "params_provenance") if c in df]
    cols += [
        c
        for c in df.columns
        if c in BOARD or c.removesuffix("_std") in BOARD or _is_extra(c.removesuffix("_std"))
    ]
    out = df[cols].astype(object).where(df[cols].notna(), None)
    rows = out.to_dict(orient="records")
    for row in rows:
        if isinstance(row.get("params_provenance"), str):
            row["params_provenance"] = json.loads(row["params_provenance"])
    return rows


def report_table(report):
    """The summary printed after a submission: the method beside gold and original, then
    one line per failed seed."""
    from rich.console import Group

    title = (
        f"{report.method} on {report.scenario}: {report.status} "
        f"({report.seeds_ok}/{len(report.seeds)} seeds ok)"
    )
    table = Table(title=title, title_justify="left")
    for col in ("metric", report.method, "gold (retrain)", "original"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    gold, original = report.reference.get("gold", {}), report.reference.get("original", {})
    m = report.metrics
    for name in of_level("model"):
        if name in m or name in gold:
            table.add_row(
                name,
                fmt(m.get(name), m.get(f"{name}_std")),
                fmt(gold.get(name)),
                fmt(original.get(name)),
            )
    # Forget quality: the gold column holds the ceiling (gold against independent gold).
    if "forget_quality" in m:
        n = int(m.get("forget_quality_models", 0))
        table.add_row(
            f"forget_quality (N={n})",
            fmt(m["forget_quality"]),
            fmt(m.get("forget_quality_ceiling")),
            "",
        )
    beside_f = ("forget_quality", "forget_quality_ceiling", "forget_quality_models")
    submission_level = [n for n in of_level("submission") if n not in beside_f]
    for name in (*submission_level, "avg_gap", *of_level("cost")):
        if name in m:
            table.add_row(name, fmt(m[name], digits=digits(name)), "", "")
    # A training stage (SISA): its cost, the trained model beside the original, and what
    # the method reported.
    if "trained_test_acc" in m:
        table.add_row("train_seconds", fmt(m["train_seconds"], m.get("train_seconds_std"), 2))
        table.add_row(
            "trained_test_acc",
            fmt(m["trained_test_acc"], m.get("trained_test_acc_std")),
            "",
            fmt(original.get("test_acc")),
        )
        table.add_row("trained_acc_drop", fmt(m["trained_acc_drop"], m.get("trained_acc_drop_std")))
    for name in sorted(k for k in m if k.startswith(METHOD_PREFIX) and not k.endswith("_std")):
        table.add_row(name, fmt(m[name], m.get(f"{name}_std"), 2))
    for name in of_level("stream"):  # a deletion stream's cumulative cost
        if name in m:
            table.add_row(name, fmt(m[name], digits=digits(name)), "", "")
    parts = [table]
    if report.requests:
        parts.append(_requests_table(report.requests))
    failed = [s for s in report.seeds if s.status != "ok"]
    if failed:
        seeds = Table(title="seeds that failed", title_justify="left")
        for col in ("seed", "status", "error"):
            seeds.add_column(col, overflow="fold")
        for s in failed:
            first = (s.error or "").strip().splitlines()[0] if s.error else ""
            seeds.add_row(str(s.seed), s.status, first)
        parts.append(seeds)
    parts.extend(f"note: {note}" for note in report.notes)
    return Group(*parts)


def _requests_table(requests) -> Table:
    """A deletion stream, one row per request: what it deleted and the model after it."""
    table = Table(title="after each deletion request", title_justify="left")
    columns = ("forget_quality", "forget_acc", "test_acc", "avg_gap", "unlearn_seconds")
    for col in ("request", "size", "deleted", "seeds ok", *columns, "stream_unlearn_seconds"):
        table.add_column(label(col) if col in (*columns, "stream_unlearn_seconds") else col)
    for r in requests:
        m = r["metrics"]
        cells = [fmt(m.get(c), digits=digits(c)) for c in (*columns, "stream_unlearn_seconds")]
        table.add_row(str(r["request"]), str(r["size"]), str(r["deleted"]), r["seeds_ok"], *cells)
    return table
