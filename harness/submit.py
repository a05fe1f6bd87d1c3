"""`mu-bench submit`: scenario -> artifacts -> outcomes -> report -> store.

Every input is validated before any compute (scenario, method, hyperparameters,
budget, tracking URI); then the scenario is prepared (cached), each seed runs in its
own worker, the returned weights are validated and scored, and the report is recorded.
A failing seed never stops the others. A method with a training stage (`Method.train`)
is first trained, or loaded from the cache, once per seed (`method_training.py`).
"""

from __future__ import annotations

import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__, registry
from .cache import link_or_copy
from .errors import UsageError
from .method import Method, has_training_stage, instantiate
from .paths import work_root
from .report import Report, SeedResult
from .scenario import Scenario, load

_DEFAULT_STARTUP = 300.0


@dataclass(frozen=True)
class Submission:
    """A validated request, ready to run."""

    scenario: Scenario
    entry: registry.MethodEntry
    method: Method
    params: dict[str, Any]
    preset: str | None
    seeds: int
    budget: str | float | None  # seconds, "N%" of retrain time, or None for the default


def parse_budget(text: str | None) -> str | float | None:
    if text is None:
        return None
    t = text.strip().lower()
    try:
        if t.endswith("%"):
            value = float(t[:-1])
            if value <= 0:
                raise ValueError
            return f"{value}%"
        value = float(t.removesuffix("s"))
        if value <= 0:
            raise ValueError
        return value
    except ValueError:
        raise UsageError(
            f"--budget '{text}' is not valid: give seconds (e.g. 30) or a percentage of the "
            "retrain time (e.g. 20%)"
        ) from None


def budget_seconds(
    budget: str | float | None,
    scenario: Scenario,
    retrain_seconds: float,
    method_default: str | None = None,
) -> float:
    """The budget in seconds: the user's (seconds or a share of the retrain time) when
    given; else the method's `default_budget`, but never less than the scenario's
    budget; else the scenario's."""
    if budget is None:
        seconds = scenario.budget.seconds
        default = parse_budget(method_default)
        if default is not None:
            seconds = max(seconds, budget_seconds(default, scenario, retrain_seconds))
        return seconds
    if isinstance(budget, str):
        return float(budget[:-1]) / 100.0 * retrain_seconds
    return float(budget)


def plan(
    method_name: str,
    scenario_ref: str | Scenario,
    seeds: int | None = None,
    budget: str | None = None,
    params: dict[str, str] | None = None,
    use_preset: bool = True,
) -> Submission:
    """Validate everything a submission needs; raises UsageError naming what is valid.
    `scenario_ref` is a built-in name, a .toml path or an already loaded `Scenario`."""
    scenario = scenario_ref if isinstance(scenario_ref, Scenario) else load(scenario_ref)
    entry = registry.get(method_name)
    cls = entry.load()
    preset = None
    merged: dict[str, Any] = {}
    if use_preset and isinstance(cls, type) and issubclass(cls, Method):
        preset, merged = cls.preset_for(scenario.data.dataset, scenario.forget.rule)
    default_budget = getattr(cls, "default_budget", None)
    if default_budget is not None:
        try:
            parse_budget(default_budget)
        except UsageError:
            raise UsageError(
                f"method '{method_name}' declares default_budget = {default_budget!r}: give "
                "seconds (e.g. '30') or a percentage of the retrain time (e.g. '150%')"
            ) from None
    merged.update(params or {})
    method = instantiate(cls, method_name, merged)
    if seeds is not None and seeds < 1:
        raise UsageError(f"--seeds {seeds}: give at least 1")
    return Submission(
        scenario,
        entry,
        method,
        method.model_dump(mode="json"),
        preset,
        seeds or scenario.submit.seeds,
        parse_budget(budget),
    )


def write_inputs(sub: Submission, art, folder: Path) -> dict[str, str | None]:
    """The only files a worker gets: original weights and the declared sets."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    link_or_copy(art.original.weights, folder / "original.pt")
    inputs: dict[str, str | None] = {
        "model": str(folder / "original.pt"),
        "forget": None,
        "retain": None,
    }
    reads = type(sub.method).reads
    for which, split in (("forget", art.forget), ("retain", art.retain)):
        if reads in (which, "both"):
            torch.save({"x": split.x, "y": split.y}, folder / f"{which}.pt")
            inputs[which] = str(folder / f"{which}.pt")
    return inputs


def worker_task(sub: Submission, art, inputs: dict, seed: int, budget: float, device: str) -> dict:
    from .artifacts import init_seed
    from .seeding import derive_seed

    forget = sub.scenario.forget
    return {
        "method": {"name": sub.entry.name, "value": sub.entry.value},
        "params": sub.params,
        "seed": seed,
        "rng_seed": derive_seed(sub.scenario.seed, "submission", seed),
        "budget_seconds": budget,
        "device": device,
        "num_classes": art.data.num_classes,
        "model_spec": art.spec.to_dict(),
        "recipe": sub.scenario.train.model_dump(mode="json"),
        "forget_classes": list(forget.classes) if forget.rule == "class" else None,
        "initial_seed": init_seed(sub.scenario, "original", 0),  # for task.initial_model()
        "inputs": inputs,
    }


def _same_keys(per_seed: list[dict[str, float]]) -> list[dict[str, float]]:
    """Every seed's metrics with the same keys (NaN where a method reported a number on
    some seeds only), so that `aggregate` averages each over the seeds that have it."""
    names = list(dict.fromkeys(k for m in per_seed for k in m))
    return [{k: m.get(k, float("nan")) for k in names} for m in per_seed]


def _truncation_notes(method: str, results: list[SeedResult]) -> list[str]:
    """A note when a method that reports `truncated` (retrain) stopped at the budget, on
    a seed that finished in time or one that overran it by its last step (a timeout)."""
    cut = [r for r in results if r.metrics.get("method.truncated", 0.0) > 0]
    if not cut:
        return []
    done = min(r.metrics.get("method.epochs_completed", float("nan")) for r in cut)
    planned = cut[0].metrics.get("method.epochs", float("nan"))
    seeds = ("seed " if len(cut) == 1 else "seeds ") + ", ".join(str(r.seed) for r in cut)
    what = "not the oracle" if method == "retrain" else "not a full run of its recipe"
    stopped = f"{method} stopped at the budget after {done:g} of {planned:g} epochs"
    return [f"{stopped} ({seeds}): {what}"]


def run(
    sub: Submission,
    device: str = "auto",
    *,
    on_event: Callable[[str], None] = lambda msg: None,
    on_prepared: Callable[[], None] = lambda: None,
    keep_work: bool = False,
    grace: float = 2.0,
    startup: float = _DEFAULT_STARTUP,
    figures: Path | None = None,
) -> tuple[Report, dict]:
    """Run a validated submission; returns the report and the per-seed model outputs.

    With `figures`, the submission's figures are drawn into that folder as PNG files
    (from the outputs already computed: no model runs again)."""
    import torch

    from . import method_training
    from .artifacts import prepare
    from .device import resolve_device
    from .evaluation import (
        aggregate,
        infer,
        load_weights,
        model_metrics,
        reference,
        submission_metrics,
    )
    from .launch import prestart
    from .runner import Limits, SeedOutcome, run_worker

    device = resolve_device(device)
    prestart(device)
    clock = time.perf_counter()
    art = prepare(sub.scenario, device)
    on_prepared()  # the data exists: from here on the submission will be recorded
    timings = {"prepare_seconds": time.perf_counter() - clock, "evaluate_seconds": 0.0}
    startups = []
    on_event(
        f"prepared {sub.scenario.name}: original + {len(art.gold)} gold models "
        f"(retrain {art.retrain_seconds:.2f} s)"
    )
    budget = budget_seconds(
        sub.budget, sub.scenario, art.retrain_seconds, type(sub.method).default_budget
    )
    out_spec = sub.method.output_spec(art.spec)
    work = work_root() / f"{sub.scenario.name}-{sub.entry.name}-{uuid.uuid4().hex[:8]}"
    try:
        inputs = write_inputs(sub, art, work / "inputs")
        limits = Limits(budget=budget, grace=grace, startup=startup)
        trained: dict = {}
        if has_training_stage(type(sub.method)):
            clock = time.perf_counter()
            trained = method_training.train_seeds(
                sub, art, device, range(sub.seeds), work, on_event=on_event, grace=grace
            )
            index = method_training.write_index(art, work / "inputs")
            timings["train_stage_seconds"] = time.perf_counter() - clock
        results, outputs = [], {}
        for seed in range(sub.seeds):
            task = worker_task(sub, art, inputs, seed, budget, device)
            stage = trained.get(seed)
            extra: dict[str, float] = {}
            if isinstance(stage, SeedOutcome):  # the training stage failed: this seed's outcome
                outcome = stage
            else:
                if stage is not None:  # start from this seed's trained model
                    folder = work / "inputs" / f"seed-{seed}"
                    method_training.add_to_task(task, stage, out_spec, index, folder)
                    extra = method_training.trained_metrics(stage, art)
                outcome = run_worker(seed, work / f"seed-{seed}", task, limits)
            metrics: dict[str, float] = {}
            if outcome.status == "timeout":  # not scored; what the method said it did stays
                metrics.update({f"method.{k}": v for k, v in outcome.reported.items()})
            if outcome.startup_seconds is not None:
                startups.append(outcome.startup_seconds)
            clock = time.perf_counter()
            if outcome.status == "ok":
                model, problem = load_weights(outcome.weights, out_spec, device)
                if problem:
                    outcome = outcome.with_status("invalid", problem)
                else:
                    outputs[seed] = infer(model, art)
                    metrics = model_metrics(outputs[seed], art)
                    metrics.update(extra)
                    metrics.update({f"method.{k}": v for k, v in outcome.reported.items()})
            timings["evaluate_seconds"] += time.perf_counter() - clock
            error = outcome.error
            if (
                outcome.status in ("error", "crashed")
                and outcome.stderr_tail
                and not outcome.traceback
            ):
                error = f"{error}\n--- worker stderr (tail) ---\n{outcome.stderr_tail}"
            results.append(
                SeedResult(
                    seed,
                    outcome.status,
                    outcome.unlearn_seconds,
                    outcome.wall_seconds,
                    error,
                    outcome.traceback,
                    metrics,
                )
            )
            took = (
                f"{outcome.unlearn_seconds:.2f} s" if outcome.unlearn_seconds is not None else "-"
            )
            on_event(
                f"seed {seed}: {outcome.status} ({took})"
                + (f": {outcome.error}" if outcome.error and outcome.status != "ok" else "")
            )
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)

    clock = time.perf_counter()
    ref = reference(art)
    ok = [r for r in results if r.status == "ok"]
    metrics = aggregate(
        _same_keys([r.metrics for r in ok]),
        [r.unlearn_seconds for r in ok if r.unlearn_seconds is not None],
        ref["gold"],
        art.retrain_seconds,
    )
    across = submission_metrics([outputs[r.seed] for r in ok], [r.metrics for r in ok], art)
    metrics.update(across.metrics)
    timings["evaluate_seconds"] += time.perf_counter() - clock
    if startups:
        timings["worker_startup_seconds"] = statistics.median(startups)
    cls = type(sub.method)
    in_scope = not (cls.scope == "class" and sub.scenario.forget.rule != "class")
    notes = []
    if not in_scope:
        notes.append("out of scope: a class-unlearning method run on random forgetting")
    notes.extend(across.notes)
    notes.extend(_truncation_notes(sub.entry.name, results))
    report = Report(
        scenario=sub.scenario.name,
        scenario_hash=sub.scenario.content_hash,
        method=sub.entry.name,
        distribution=sub.entry.distribution,
        version=sub.entry.version,
        params=sub.params,
        preset=sub.preset,
        budget_seconds=budget,
        device=device,
        torch_version=torch.__version__,
        harness_version=__version__,
        reads=cls.reads,
        in_scope=in_scope,
        seeds=tuple(results),
        metrics=metrics,
        reference=ref,
        notes=tuple(notes),
        timings=timings,
    )
    if figures is not None:
        from mu_bench.leaderboard.figures import submission_figures

        clock = time.perf_counter()
        submission_figures(figures, report, art, {r.seed: outputs[r.seed] for r in ok}, across)
        timings["figures_seconds"] = time.perf_counter() - clock
    return report, outputs
