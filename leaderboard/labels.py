"""Short names for submissions: parameter labels, run names, figure titles.

A submission's *overrides* are the parameters that differ from the method's defaults
with the scenario's preset (what `--param` changed; `Report.overrides`). They name a
submission wherever there is little room: the MLflow run (`finetune lr=0.05 · 8
seeds`), the terminal board's parameter column, figure titles. Where the overrides do
not fit, a short hash of all parameters stands in (`#3fa9c1`); `mu-bench show RUN`
prints them whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SEP = " · "


def value_text(value: Any) -> str:
    """A parameter value as `--param` would take it (`0.05`, `true`, `[1, 2]`)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def pairs(params: Mapping[str, Any]) -> str:
    """`lr=0.05 epochs=3`, in the order given."""
    return " ".join(f"{k}={value_text(v)}" for k, v in params.items())


def params_hash(params: Mapping[str, Any], extra: str = "") -> str:
    """`#` and 6 hex digits of the canonical JSON of `params` (plus `extra`)."""
    text = json.dumps(dict(params), sort_keys=True, default=str) + extra
    return "#" + hashlib.sha256(text.encode()).hexdigest()[:6]


def short(params: Mapping[str, Any], overrides: Mapping[str, Any], limit: int) -> str:
    """The overrides as `k=v` pairs when they fit in `limit` characters, else the hash of
    all parameters; "" when nothing was overridden."""
    text = pairs(overrides)
    if len(text) <= limit:
        return text
    return params_hash(params)


def run_name(
    method: str, params: Mapping[str, Any], overrides: Mapping[str, Any], n: int, sets: int = 0
) -> str:
    """A submission's MLflow run name: `finetune lr=0.05 · 8 seeds`; on a family of
    forget sets (`sets` of them, `n` seeds in all), `finetune · 10 sets x 8 seeds`."""
    label = short(params, overrides, 48)
    per = n // sets if sets else n
    seeds = f"{per} seed" + ("" if per == 1 else "s")
    if sets:
        seeds = f"{sets} sets x {seeds}"
    return f"{method} {label}{SEP}{seeds}" if label else f"{method}{SEP}{seeds}"


def seed_run_name(method: str, seed: int, forget_set: int | None = None) -> str:
    """A seed's MLflow run name: `finetune · seed 3` (of a family's set: `finetune ·
    draw 4 · seed 3`)."""
    where = "" if forget_set is None else f"draw {forget_set}{SEP}"
    return f"{method}{SEP}{where}seed {seed}"


def figure_title(report: Any, limit: int = 110) -> str:
    """Two lines: method, scenario and seeds; then every parameter (and the preset)."""
    n = len(report.seeds)
    head = f"{report.method} on {report.scenario}{SEP}{n} seed{'' if n == 1 else 's'}"
    params = pairs(report.params) or "(no parameters)"
    if len(params) > limit:
        params = params[: limit - 1] + "…"
    preset = f"  [preset {report.preset}]" if report.preset else ""
    return f"{head}\n{params}{preset}"
