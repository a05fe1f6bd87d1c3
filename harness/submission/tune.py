"""Fair tuning: search a method's hyperparameters without ever reading the evaluation set.

`mu-bench tune METHOD --scenario S --trials N` runs an Optuna study (TPE, seeded) over
the method's `search_space` (or `--space`). Every trial is a submission of the method
(`--seeds`, default 3, and the scenario's budget or `--budget`), planned, executed and
evaluated by the same stages as `submit` (the same executor seam, `--jobs`), but on a
*tuning scenario*: the scenario with its forget section's `draw` set to 1 (`data.forget`:
the same rule, another draw disjoint from the evaluation set; for class forgetting the
next class, digit 4 for `digits-class3`). That scenario has its own cache keys, so its
gold models are trained for the tuning set only and cached apart. The original model
(and LiRA's IN models, which tuning does not use) are shared: they never saw a forget
set. The evaluation forget set is never drawn and its gold models never opened
(`tests/test_tune.py` counts every split and cache entry a tune makes).

Objective (`--objective`): `avg_gap` (default, minimised): SalUn's mean absolute gap to
the tuning gold models over UA, RA, TA and MIA-efficacy, the board's tie-breaker and the
number the papers tune on, here against gold models of another forget set; or
`score_norm` (maximised, needs seeds >= 2): the challenge's score (forget quality F x
utility ratios) over the tuning set's F ceiling (gold against holdout gold), the board's
headline. Parameters start from the fields' defaults (never an existing preset: those
were picked on the evaluation sets), `--param` fixes others. The method's fields, search
space and the validity of every searched end and fixed value come from its sandboxed
description (`plan.describe_method`): the plugin is never imported here.

The result is a preset file (`presets`): the best trial's parameters with their
provenance (study, sampler, trials, objective and best value, the tuning set with a hash
of its indices and its gold models' cache keys, the evaluation set named as not read)
and every trial; `submit --preset FILE|NAME` uses it and the board says "tuned".

Cost: the tuning set's models once (on digits 32 gold, 32 holdout and 32 LiRA IN models,
batched), then one 3-seed submission per trial. Measured: `mu-bench tune finetune
--trials 20 --scenario digits-class3` took 106 s wall from an empty cache (52 s of it
preparing the original and the tuning set's models; later studies reuse them), about
2.7 s a trial, on 2 cores shared with a test run: one run, not a median.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__, registry
from ..data.forget import ForgetConfig
from ..errors import UsageError
from ..isolation.protocol import MethodInfo
from ..scenario import Scenario, load
from . import presets
from .plan import describe_method, parse_budget

log = logging.getLogger("mu_bench")

# metric -> Optuna direction
OBJECTIVES = {"avg_gap": "minimize", "score_norm": "maximize"}
KINDS = ("float", "log", "int", "choice")
SPACE_FORM = "float:LOW:HIGH, log:LOW:HIGH, int:LOW:HIGH or choice:A,B,C"
DEFAULT_SEEDS = 3


@dataclass(frozen=True)
class Dim:
    """One searched field."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    @property
    def text(self) -> str:
        if self.kind == "choice":
            return "choice:" + ",".join(str(c) for c in self.choices)
        return f"{self.kind}:{self.low:g}:{self.high:g}"

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_dim(name: str, text: str) -> tuple[Dim, list[Any]]:
    """`"log:1e-3:0.3"` for field `name`: the dimension, and the values (its ends or
    choices) that the method's own validation must accept (`check_space`)."""
    kind, _, rest = text.strip().partition(":")
    bad = f"search space for '{name}': '{text}' is not valid: give {SPACE_FORM}"
    if kind not in KINDS or not rest:
        raise UsageError(bad)
    if kind == "choice":
        choices = tuple(_number(c.strip()) for c in rest.split(",") if c.strip())
        if not choices:
            raise UsageError(bad)
        return Dim(name, kind, choices=choices), list(choices)
    parts = rest.split(":")
    try:
        low, high = (int(p) if kind == "int" else float(p) for p in parts)
    except ValueError:
        raise UsageError(bad) from None
    if not low < high or (kind == "log" and low <= 0):
        raise UsageError(f"{bad} (LOW < HIGH, and LOW > 0 for log)")
    return Dim(name, kind, low, high), [low, high]


def parse_space(space: dict[str, str]) -> dict[str, tuple[Dim, list[Any]]]:
    return {name: parse_dim(name, text) for name, text in space.items()}


def check_space(
    parsed: dict[str, tuple[Dim, list[Any]]], info: MethodInfo, method: str
) -> list[dict[str, Any]]:
    """Every searched field must be one of the method's (`info`, its sandboxed
    description); returns the candidate parameter sets (each end or choice alone) whose
    validation, by the method's own fields in a worker, `plan_tune` checks, so that a
    trial never proposes an invalid value."""
    names = [f["name"] for f in info.fields]
    for name in parsed:
        if name not in names:
            from ..errors import did_you_mean

            raise UsageError(
                f"search space: method '{method}' has no parameter '{name}'."
                f"{did_you_mean(name, names)} Valid parameters: {info.fields_text}"
            )
    return [{name: value} for name, (_, values) in parsed.items() for value in values]


def tuning_scenario(scenario: Scenario, draw: int = 1) -> Scenario:
    """`scenario` with forget set `draw` (disjoint from its own, draw 0) and nothing else
    changed: its gold models get their own cache keys."""
    if draw < 1:
        raise UsageError(f"--draw {draw}: give 1 or more (draw 0 is the evaluation set)")
    forget = ForgetConfig.model_validate({**scenario.forget.model_dump(), "draw": draw})
    return scenario.model_copy(update={"forget": forget, "name": f"{scenario.name}.tune{draw}"})


@dataclass(frozen=True)
class TuneRequest:
    """A validated `tune`: everything is checked before any compute."""

    method: str
    info: MethodInfo  # the method's sandboxed description (no preset, `fixed` validated)
    scenario: Scenario  # the evaluation scenario (named in the provenance, never prepared)
    tuning: Scenario  # its tuning scenario
    space: dict[str, Dim]
    fixed: dict[str, Any]
    trials: int
    seeds: int
    budget: str | float | None
    objective: str
    sampler_seed: int


def plan_tune(
    method: str,
    scenario_ref: str | Scenario,
    trials: int,
    *,
    space: dict[str, str] | None = None,
    fixed: dict[str, str] | None = None,
    seeds: int | None = None,
    budget: str | None = None,
    objective: str = "avg_gap",
    draw: int = 1,
    sampler_seed: int = 0,
) -> TuneRequest:
    scenario = scenario_ref if isinstance(scenario_ref, Scenario) else load(scenario_ref)
    entry = registry.get(method)
    if trials < 1:
        raise UsageError(f"--trials {trials}: give at least 1")
    if objective not in OBJECTIVES:
        raise UsageError(f"--objective '{objective}': valid are {', '.join(OBJECTIVES)}")
    seeds = DEFAULT_SEEDS if seeds is None else seeds
    if seeds < 1 or (objective == "score_norm" and seeds < 2):
        raise UsageError(f"--seeds {seeds}: give at least {2 if objective == 'score_norm' else 1}")
    tuning = tuning_scenario(scenario, draw)
    parsed_budget = parse_budget(budget)
    fixed = dict(fixed or {})
    given = parse_space(space) if space else None  # its syntax, before any worker
    # The plugin is described by a sandboxed worker, never imported here; a second one
    # checks each searched end and choice against the method's own validation.
    info = describe_method(entry, tuning, fixed, use_preset=False)
    parsed = given
    if parsed is None:
        if not info.search_space:
            raise UsageError(
                f"method '{method}' declares no search_space: give --space name=SPEC "
                f"({SPACE_FORM}); its parameters: {info.fields_text}"
            )
        parsed = parse_space(info.search_space)
    both = sorted(set(fixed) & set(parsed))
    if both:
        raise UsageError(f"'{both[0]}' is both searched (--space) and fixed (--param): give one")
    candidates = check_space(parsed, info, method)
    if candidates:
        checked = describe_method(entry, None, use_preset=False, candidates=tuple(candidates))
        for problem in checked.candidate_problems:
            if problem:
                raise UsageError(problem)
    if info.problem:
        raise UsageError(info.problem)
    dims = {name: dim for name, (dim, _) in parsed.items()}
    fixed = {k: info.params[k] for k in fixed}  # as the field's type: "2" -> 2
    return TuneRequest(
        method,
        info,
        scenario,
        tuning,
        dims,
        fixed,
        trials,
        seeds,
        parsed_budget,
        objective,
        sampler_seed,
    )


def _indices_hash(idx) -> str:
    return hashlib.sha256(idx.numpy().astype("int64").tobytes()).hexdigest()[:16]


def tune(
    req: TuneRequest,
    device: str = "auto",
    *,
    executor=None,
    prepare_executor=None,
    on_trial: Callable[[int, dict[str, Any], float, str], None] | None = None,
) -> dict[str, Any]:
    """Run the study; returns the preset document (not yet written)."""
    import optuna

    from ..data.forget import drawn_classes
    from ..device import resolve_device
    from .evaluate import evaluate
    from .execute import execute
    from .pipeline import work_folder
    from .plan import plan
    from .prepare import prepare

    device = resolve_device(device)
    clock = time.perf_counter()
    # The tuning set's gold models only; the F ceiling only when the objective needs it,
    # no LiRA IN models (no objective reads them).
    art = prepare(
        req.tuning,
        device,
        ceiling=req.objective == "score_norm" and req.tuning.gold.ceiling,
        in_models=0,
        executor=prepare_executor,
    )
    prepare_seconds = time.perf_counter() - clock
    direction = OBJECTIVES[req.objective]

    def objective(trial) -> float:
        params = {name: dim.suggest(trial) for name, dim in req.space.items()}
        sub = plan(
            req.method, req.tuning, req.seeds, _budget_text(req.budget), {**req.fixed, **params},
            use_preset=False,
        )  # fmt: skip
        work = work_folder(sub)
        try:
            execution = execute(sub, art, device, work, executor)
            report = evaluate(sub, art, execution, device).report
        finally:
            shutil.rmtree(work, ignore_errors=True)
        value = report.metrics.get(req.objective, float("nan"))
        if report.status != "ok" or value is None or not math.isfinite(value):
            value = float("nan")  # Optuna records the trial as failed
        trial.set_user_attr("status", report.status)
        if on_trial:
            on_trial(trial.number, params, value, report.status)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_name = (
        f"{req.method}-{req.scenario.name}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}"
    )
    study = optuna.create_study(
        study_name=study_name,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=req.sampler_seed),
    )
    study.optimize(objective, n_trials=req.trials)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise UsageError(
            f"no trial of {req.method} succeeded on {req.tuning.name}: nothing to write "
            "(see the trials' statuses above)"
        )
    best = study.best_trial
    forget = req.tuning.forget
    tuning_set: dict[str, Any] = {
        "scenario": req.tuning.name,
        "scenario_hash": req.tuning.content_hash,
        "forget": forget.describe(),
        "draw": forget.draw,
        "examples": len(art.split.forget_idx),
        "indices_sha256": _indices_hash(art.split.forget_idx),
        "gold_models": [m.key for m in (*art.gold, *art.gold_holdout)],
    }
    if forget.rule == "class":
        tuning_set["classes"] = list(drawn_classes(forget, art.data.num_classes))
    name = f"{req.method}-{req.scenario.name}"
    provenance = {
        "source": presets.FAIR,
        "name": name,
        "study": study_name,
        "sampler": f"optuna {optuna.__version__} TPESampler(seed={req.sampler_seed})",
        "scenario": req.scenario.name,
        "trials": len(study.trials),
        "trials_ok": len(done),
        "objective": {"metric": req.objective, "direction": direction, "best": best.value},
        "space": {n: d.text for n, d in req.space.items()},
        "fixed": req.fixed,
        "seeds": req.seeds,
        "budget": req.budget,
        "tuning_set": tuning_set,
        "evaluation_set": {
            "scenario_hash": req.scenario.content_hash,
            "forget": req.scenario.forget.describe(),
            "read": False,
        },
        "prepare_seconds": round(prepare_seconds, 2),
        "seconds": round(time.perf_counter() - clock, 2),
        "harness_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return {
        "format": presets.FORMAT,
        "name": name,
        "method": req.method,
        "params": {**req.fixed, **best.params},
        "provenance": provenance,
        "trials": [
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "status": t.user_attrs.get("status"),
                "params": t.params,
                "value": t.value,
            }
            for t in study.trials
        ],
    }


def _budget_text(budget: str | float | None) -> str | None:
    return None if budget is None else str(budget)


def write(doc: dict[str, Any], out: Path | None) -> Path:
    """Write the preset to `out`, default `presets.user_folder()/<name>.json`."""
    import json

    path = out or presets.user_folder() / f"{doc['name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    tmp.replace(path)
    return path
