"""`mu-bench check METHOD`: the plugin contract checked before a submission
(`mu_bench.testing`): a table of pass / warn / fail / skip, exit 1 when a check fails.
About 3-10 s per method on `digits-tiny` once its artifacts are cached (the first run
prepares them: about 15 s on two busy cores, mostly imports). The method is never
imported here: its class is checked in a sandboxed worker (see `mu_bench.testing`), and
an import that raises, crashes or hangs is a failed check, exit 1."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .app import (
    DeviceOpt,
    JsonOpt,
    NoPresetOpt,
    ParamOpt,
    app,
    emit_json,
    out,
    say,
)

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@app.command()
def check(
    method: Annotated[str, typer.Argument(help="Method name (see `mu-bench methods`).")],
    scenario: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--scenario",
            "-s",
            help="Scenario to run the checks on (default: digits-tiny, prepared in seconds).",
        ),
    ] = None,
    param: ParamOpt = None,
    no_preset: NoPresetOpt = False,
    device: DeviceOpt = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """Check METHOD against the plugin contract on a tiny scenario, through the real
    runner: exit 1 when a check fails."""
    from rich.table import Table

    from .. import registry
    from ..device import resolve_device
    from ..method import parse_params
    from ..scenario import load
    from ..testing import CHECK_SCENARIO, yield_checks

    registry.get(method)  # an unknown name is bad input (exit 2), not a failed check
    params = parse_params(param or [])
    if scenario is not None:
        load(scenario)  # a bad name or file is a usage error (exit 2), before any check
    device = resolve_device(device)
    checks = list(yield_checks(method, scenario=scenario, params=params, device=device))
    say(f"checking {method} on {scenario or CHECK_SCENARIO} ({len(checks)} checks)")
    results = []
    try:
        for c in checks:
            results.append(c.run())
            if not as_json:
                r = results[-1]
                say(f"  {r.status:4}  {r.check}")
    finally:
        checks[0].subject.close()
    failed = [r for r in results if r.status == "fail"]
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "warn", "fail", "skip")}
    if as_json:
        emit_json(
            {
                "method": method,
                "ok": not failed,
                "counts": counts,
                "checks": [r.to_json() for r in results],
            }
        )
    else:
        table = Table(title=f"mu-bench check {method}", title_justify="left")
        table.add_column("check", no_wrap=True)
        table.add_column("result", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for r in results:
            table.add_row(
                r.check.removeprefix("check_"), f"[{STYLE[r.status]}]{r.status}", r.detail
            )
        out.print(table)
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        out.print(f"{'FAILED' if failed else 'OK'}: {summary}", markup=False)
    if failed:
        sys.exit(1)
