"""Render leaderboards and reports: rich tables for terminals, JSON, CSV, Markdown.

The terminal board (and `--markdown`) shows the headline columns in at most 100
characters: rank, method, a short parameter label (`labels.short`: the overrides, or a
hash), seeds, the ranking metric, forget quality beside its ceiling, forget and test
accuracy, MIA-efficacy and the cost, values to 3 significant places. Rows with fewer
seeds than the board's usual are marked `*`, methods out of scope `†`, runs no sandbox
confined `‡` (`unverified`: tagged `none`, or recorded before mu-bench had one); a failed
submission's status stands in its score cell. `wide=True` shows every metric with its
spread over seeds, the status and the run id. `--json` and `--csv` carry every metric
with real types (numbers, booleans, objects).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from rich.table import Table

from mu_bench.evaluation.catalogue import (
    BOARD,
    FALLBACK,
    FAMILY_PREFIX,
    FAMILY_SHOWN,
    METHOD_PREFIX,
    SHOWN,
    SPEEDUP_CAP,
    STAGE_SHOWN,
    STREAM_SHOWN,
    TIMING_FLOOR,
    label,
    of_level,
)

from . import labels

PARAM_WIDTH = 14  # the parameter label's room in the headline board
WIDE_PARAM_WIDTH = 30
OUT_OF_SCOPE, FEWER_SEEDS, UNVERIFIED = "†", "*", "‡"


def _is_extra(column: str) -> bool:
    return (
        column in STAGE_SHOWN
        or column in STREAM_SHOWN
        or column in FAMILY_SHOWN
        or column.startswith(METHOD_PREFIX)
    )


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def sig(value: Any, places: int = 3) -> str:
    """A number to `places` significant digits, without exponent for everyday sizes:
    0.967, 0.0410, 1.00, 12.3, 654737; "-" when missing."""
    if _missing(value):
        return "-"
    if not isinstance(value, int | float):
        return str(value)
    v = float(value)
    if v == 0:
        return "0"
    if abs(v) >= 10 ** (places - 1) or (abs(v) < 1e-4):
        return f"{v:.0f}" if abs(v) >= 1 else f"{v:.{places - 1}e}"
    text = f"{v:#.{places}g}"
    return text.rstrip(".") if "e" not in text else text


def unverified(sandbox) -> bool:
    """A run no sandbox confined: recorded with sandbox "none", or before mu-bench had one
    (no tag). Its numbers stand on the plugin's good faith alone."""
    return not isinstance(sandbox, str) or sandbox in ("", "none")


def seconds_text(value: Any) -> str:
    """A cost: "<1 ms" below the timing floor, "12.3 ms", "1.23 s", "123 s"."""
    if _missing(value):
        return "-"
    v = float(value)
    if v < TIMING_FLOOR:
        return "<1 ms"
    if v < 1:
        return f"{sig(v * 1000)} ms"
    return f"{sig(v)} s"


def speedup_text(speedup: Any, unlearn_seconds: Any) -> str:
    """The retrain time over the cost: "n/a" when the cost is below the timing floor or
    missing, ">1000x" past the cap."""
    if _missing(speedup) or _missing(unlearn_seconds) or float(unlearn_seconds) < TIMING_FLOOR:
        return "n/a"
    if float(speedup) > SPEEDUP_CAP:
        return f">{SPEEDUP_CAP:.0f}x"
    return f"{sig(speedup)}x"


def _cell(name: str, value: Any, std: Any = None, row: Any = None) -> str:
    if name == "unlearn_seconds" or name.endswith("_seconds"):
        return seconds_text(value)
    if name == "speedup":
        return speedup_text(value, None if row is None else row.get("unlearn_seconds"))
    if name == "forget_quality_models":
        return "-" if _missing(value) else f"{float(value):.0f}"
    text = sig(value)
    if not _missing(std) and text != "-":
        text += f"±{sig(std, 2)}"
    return text


def _json_obj(text: Any) -> dict[str, Any] | None:
    if _missing(text) or text in ("", None):
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


# Where a submission's parameters came from (`submission.presets`), as the board says it.
_SHORT_SOURCE = {"fair-tuning": "tuned", "fair-tuning+user": "tuned+user"}


def _source(value: Any) -> str:
    return "-" if _missing(value) else _SHORT_SOURCE.get(value, str(value))


def param_labels(df: pd.DataFrame, width: int = PARAM_WIDTH) -> list[str]:
    """One short label per row: `tuned` (or `tuned+user`) for a fair-tuned preset, else
    the overrides (`lr=0.05`), the preset's name (`digits`) or `defaults`; a hash of all
    parameters when they do not fit; rows of one method that would share a label get
    their hashes."""
    rows = []
    for _, r in df.iterrows():
        params = _json_obj(r.get("params")) or {}
        overrides = _json_obj(r.get("overrides"))
        if overrides is None:  # recorded before overrides were: vary within the method
            same = df[df["method"] == r["method"]]
            others = [_json_obj(p) or {} for p in same["params"]]
            overrides = {
                k: v for k, v in params.items() if len({json.dumps(o.get(k)) for o in others}) > 1
            }
        text = labels.short(params, overrides, width)
        if str(r.get("params_from", "")).startswith("fair-tuning"):
            # A tuned preset differs from the built-in one everywhere: say where it came
            # from (`show RUN` prints the values).
            text = _source(r.get("params_from"))
        elif not text:
            preset = r.get("preset")
            text = preset if isinstance(preset, str) and preset else "defaults"
        rows.append((r["method"], text, params, str(r.get("version", ""))))
    out = [text for _, text, _, _ in rows]
    seen: dict[tuple[str, str], int] = {}
    for method, text, _, _ in rows:
        seen[method, text] = seen.get((method, text), 0) + 1
    for i, (method, text, params, version) in enumerate(rows):
        if seen[method, text] > 1:
            out[i] = labels.params_hash(params, version)
    return out


@dataclass
class Board:
    """A board ready to print: its rows (column -> text) and footnotes."""

    rows: list[dict[str, str]]
    notes: list[str] = field(default_factory=list)


def _usual_seeds(df: pd.DataFrame) -> int | None:
    totals = df["seeds_total"].dropna() if "seeds_total" in df else pd.Series([], dtype=int)
    return int(totals.mode().max()) if len(totals) else None


def board_rows(df: pd.DataFrame, wide: bool = False) -> Board:
    """The rows of a ranked board (`ranking.table`): the headline columns, or with
    `wide` every metric (mean±std), the status and the run id."""
    from .ranking import rank_metric

    if df.empty:
        return Board([])
    rank_by = rank_metric(df)
    usual = _usual_seeds(df)
    names = param_labels(df, WIDE_PARAM_WIDTH if wide else PARAM_WIDTH)
    extras = [
        c for c in df.columns if _is_extra(c) and not c.endswith("_std") and df[c].notna().any()
    ]
    marks: set[str] = set()
    has_sandbox = "sandbox" in df  # a store with no sandbox tag at all: a hand-made frame
    rows = []
    for (_, r), params in zip(df.iterrows(), names, strict=True):
        out_of_scope = r.get("in_scope", "true") == "false"
        total = r.get("seeds_total")
        fewer = usual is not None and not _missing(total) and int(total) < usual
        marks |= {OUT_OF_SCOPE} if out_of_scope else set()
        marks |= {FEWER_SEEDS} if fewer else set()
        unconfined = has_sandbox and unverified(r.get("sandbox"))
        marks |= {UNVERIFIED} if unconfined else set()
        row = {
            "#": "" if _missing(r["rank"]) else str(r["rank"]),
            "method": r["method"]
            + (OUT_OF_SCOPE if out_of_scope else "")
            + (UNVERIFIED if unconfined else ""),
            "params": params,
        }
        failed = _missing(r.get(rank_by)) and _missing(r.get(FALLBACK))
        if wide:
            row["from"] = _source(r.get("params_from"))
            row["status"] = r["status"] + (", unverified" if unconfined else "")
        row["seeds"] = f"{r['seeds']}{FEWER_SEEDS if fewer else ''}"
        f, ceiling = r.get("forget_quality"), r.get("forget_quality_ceiling")
        f_text = sig(f) if _missing(ceiling) or _missing(f) else f"{sig(f)}/{sig(ceiling)}"
        if not wide:
            row[label(rank_by)] = r["status"] if failed else sig(r.get(rank_by))
            row["F/ceil"] = f_text
            row["forget"] = sig(r.get("forget_acc"))
            row["test"] = sig(r.get("test_acc"))
            row["MIA"] = sig(r.get("mia_efficacy"))
            row["cost"] = seconds_text(r.get("unlearn_seconds"))
        else:
            for m in SHOWN:
                row[label(m)] = _cell(m, r.get(m), r.get(f"{m}_std"), r)
            row[label("forget_quality")] = f_text
            for m in extras:
                row[label(m)] = _cell(m, r.get(m), r.get(f"{m}_std"), r)
            row["run"] = str(r["run_id"])[:8]
        rows.append(row)
    notes = []
    if rank_by == "score_norm" and not wide:
        notes.append("score norm = score / ceiling: comparable across seeds (N)")
    if rank_by == "score":
        from .ranking import forget_n

        ns = forget_n(df[df["score"].notna()]).dropna()
        if ns.nunique() > 1:
            order = sorted(ns.unique(), key=lambda v: (v != ns.mode().max(), -v))
            groups = ", then ".join(f"N={v:.0f}" for v in order)
            notes.append(f"score compares only equal N (no ceiling): ranked within N, {groups}")
    if FEWER_SEEDS in marks:
        notes.append(f"{FEWER_SEEDS} fewer seeds than this board's usual {usual}")
    if OUT_OF_SCOPE in marks:
        notes.append(f"{OUT_OF_SCOPE} out of scope: a class-unlearning method on random forgetting")
    if UNVERIFIED in marks:
        notes.append(f"{UNVERIFIED} unverified: no sandbox confined its workers")
    return Board(rows, notes)


def rich_table(title: str, board: Board):
    """The board as a rich table, its footnotes below it."""
    from rich import box
    from rich.console import Group
    from rich.text import Text

    # A rule under the header only, no outer padding: every character for the columns.
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for col in board.rows[0] if board.rows else ["#", "method", "params"]:
        left = col in ("method", "params", "from", "status", "run")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for row in board.rows:
        table.add_row(*row.values())
    return Group(table, *(Text(note, style="dim") for note in board.notes))


def markdown(board: Board) -> str:
    if not board.rows:
        return "(no submissions)"
    text = pd.DataFrame(board.rows).to_markdown(index=False)
    return text + "".join(f"\n\n{note}" for note in board.notes)


def markdown_boards(tables: dict[str, pd.DataFrame], wide: bool = False) -> str:
    """A `### scenario` heading and a Markdown table per scenario (`--markdown`)."""
    return "".join(f"### {n}\n\n{markdown(board_rows(t, wide))}\n\n" for n, t in tables.items())


def _plain(value: Any) -> Any:
    """A JSON value: numbers as numbers, missing as None."""
    if _missing(value):
        return None
    if hasattr(value, "item"):  # numpy and pandas scalars
        return value.item()
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The board as JSON objects: real types throughout (`in_scope` a boolean, `params`
    and `overrides` objects, seeds as numbers), every metric of the board."""
    metrics = [
        c
        for c in df.columns
        if c in BOARD or c.removesuffix("_std") in BOARD or _is_extra(c.removesuffix("_std"))
    ]
    out = []
    for _, r in df.iterrows():
        doc: dict[str, Any] = {
            "rank": _plain(r["rank"]),
            "method": r["method"],
            "version": _plain(r.get("version")),
            "status": r["status"],
            "seeds_ok": _plain(r.get("seeds_ok")),
            "seeds": _plain(r.get("seeds_total")),
            "in_scope": r.get("in_scope", "true") != "false",
            "sandbox": None if _missing(r.get("sandbox")) else r.get("sandbox"),
            "params": _json_obj(r.get("params")) or {},
            "preset": r.get("preset") or None,
            "overrides": _json_obj(r.get("overrides")),
            "params_from": None if _missing(r.get("params_from")) else r.get("params_from"),
            "params_provenance": _json_obj(r.get("params_provenance")),
            "run_id": r["run_id"],
        }
        doc.update({m: _plain(r.get(m)) for m in metrics})
        out.append(doc)
    return out


def csv_frame(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every board as one CSV-ready frame: a `scenario` column, `params` as JSON text."""
    frames = []
    for name, t in tables.items():
        docs = records(t)
        for d in docs:
            d["params"] = json.dumps(d["params"], sort_keys=True)
            d["overrides"] = None if d["overrides"] is None else json.dumps(d["overrides"])
            prov = d["params_provenance"]
            d["params_provenance"] = None if prov is None else json.dumps(prov, sort_keys=True)
        frames.append(pd.DataFrame(docs).assign(scenario=name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


TRACEBACK_LINES = 30  # the tail of a traceback the console shows: where it failed


def _tracebacks(report) -> list:
    """The failed seeds' tracebacks, one block per distinct text (eight seeds failing the
    same way print once), each cut to its last `TRACEBACK_LINES` lines."""
    from rich.text import Text

    groups: dict[str, list] = {}
    for s in report.seeds:
        if s.status != "ok" and (s.traceback or s.error):
            groups.setdefault((s.traceback or s.error).rstrip(), []).append(s)
    blocks = []
    for text, seeds in groups.items():
        names = ", ".join(str(s.seed) for s in seeds)
        statuses = "/".join(dict.fromkeys(s.status for s in seeds))
        lines = text.splitlines()
        head = f"seed{'s' * (len(seeds) > 1)} {names} ({statuses}): traceback"
        if len(lines) > TRACEBACK_LINES:
            head += f", last {TRACEBACK_LINES} of {len(lines)} lines"
            lines = lines[-TRACEBACK_LINES:]
        blocks += [Text(head, style="bold"), Text("\n".join(lines))]
    return blocks


def report_table(report, extras: bool = True):
    """The summary printed after a submission: the method beside gold and original, then
    one line per failed seed. With `extras` (what `submit` prints; `show` lays these out
    itself), also the parameters used, after the preset, and the failed seeds'
    tracebacks."""
    from rich.console import Group
    from rich.text import Text

    sandbox = report.sandbox + (", unverified" if unverified(report.sandbox) else "")
    title = (
        f"{report.method} on {report.scenario}: {report.status} "
        f"({report.seeds_ok}/{len(report.seeds)} seeds ok; sandbox: {sandbox})"
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
                _cell(name, m.get(name), m.get(f"{name}_std")),
                sig(gold.get(name)),
                sig(original.get(name)),
            )
    # Forget quality: the gold column holds the ceiling (gold against independent gold).
    if "forget_quality" in m:
        n = int(m.get("forget_quality_models", 0))
        table.add_row(
            f"forget_quality (N={n})",
            sig(m["forget_quality"]),
            sig(m.get("forget_quality_ceiling")),
            "",
        )
    beside_f = ("forget_quality", "forget_quality_ceiling", "forget_quality_models")
    submission_level = [n for n in of_level("submission") if n not in beside_f]
    for name in (*submission_level, "avg_gap", *of_level("cost")):
        if name in m or name == "speedup" and "unlearn_seconds" in m:
            table.add_row(name, _cell(name, m.get(name), None, m), "", "")
    # A training stage (SISA): its cost, the trained model beside the original, and what
    # the method reported.
    if "trained_test_acc" in m:
        table.add_row("train_seconds", seconds_text(m["train_seconds"]))
        table.add_row(
            "trained_test_acc",
            _cell("trained_test_acc", m["trained_test_acc"], m.get("trained_test_acc_std")),
            "",
            sig(original.get("test_acc")),
        )
        table.add_row(
            "trained_acc_drop",
            _cell("trained_acc_drop", m["trained_acc_drop"], m.get("trained_acc_drop_std")),
        )
    for name in sorted(k for k in m if k.startswith(METHOD_PREFIX) and not k.endswith("_std")):
        table.add_row(name, _cell(name, m[name], m.get(f"{name}_std")))
    for name in of_level("stream"):  # a deletion stream's cumulative cost
        if name in m:
            table.add_row(name, _cell(name, m[name]))
    parts: list = [table]
    if report.requests:
        parts.append(_requests_table(report.requests))
    if report.forget_sets:
        parts.append(_sets_table(report.forget_sets, m))
    if extras:
        preset = f"preset {report.preset}" if report.preset else "no preset"
        used = labels.pairs(report.params) or "none"
        parts.append(Text(f"parameters used ({preset}): {used}"))
    failed = [s for s in report.seeds if s.status != "ok"]
    if failed:
        seeds = Table(title="seeds that failed", title_justify="left")
        for col in ("seed", "status", "error"):
            seeds.add_column(col, overflow="fold")
        for s in failed:
            first = (s.error or "").strip().splitlines()[0] if s.error else ""
            where = "" if s.forget_set is None else f" (draw {s.forget_set})"
            seeds.add_row(f"{s.seed}{where}", s.status, first)
        parts.append(seeds)
        if extras:
            parts.extend(_tracebacks(report))
        if report.run_id:
            parts.append(Text(f"the whole submission: mu-bench show {report.run_id[:8]}"))
    parts.extend(Text(f"note: {note}") for note in report.notes)  # no markup: "[gold]"
    return Group(*parts)


def _sets_table(sets, metrics) -> Table:
    """A family of forget sets, one row per set, then their mean, spread and range."""
    columns = ("forget_quality_norm", "forget_acc", "retain_acc", "test_acc", "avg_gap")
    table = Table(title="per forget set (the metrics above: their mean)", title_justify="left")
    for col in ("draw", "forget set", "size", "seeds ok", *columns):
        table.add_column(label(col) if col in columns else col)
    for s in sets:
        mark = " (tuning)" if s.get("tuning_draw") else ""
        cells = [_cell(c, s["metrics"].get(c)) for c in columns]
        table.add_row(str(s["draw"]), s["forget"] + mark, str(s["size"]), s["seeds_ok"], *cells)
    table.add_row("mean", "", "", "", *[_cell(c, metrics.get(c)) for c in columns])
    for stat in ("std", "min", "max"):
        cells = [_cell(c, metrics.get(f"{FAMILY_PREFIX}{c}_{stat}")) for c in columns]
        table.add_row(stat, "", "", "", *cells)
    return table


def _requests_table(requests) -> Table:
    """A deletion stream, one row per request: what it deleted and the model after it."""
    table = Table(title="after each deletion request", title_justify="left")
    columns = ("forget_quality", "forget_acc", "test_acc", "avg_gap", "unlearn_seconds")
    for col in ("request", "size", "deleted", "seeds ok", *columns, "stream_unlearn_seconds"):
        table.add_column(label(col) if col in (*columns, "stream_unlearn_seconds") else col)
    for r in requests:
        m = r["metrics"]
        cells = [_cell(c, m.get(c)) for c in (*columns, "stream_unlearn_seconds")]
        table.add_row(str(r["request"]), str(r["size"]), str(r["deleted"]), r["seeds_ok"], *cells)
    return table
