"""Stage 1, plan: validate everything a submission needs before any compute.

Scenario, method, hyperparameters (the preset for the scenario's setting, or a preset
file given with `--preset`, then `--param`; where they came from is kept, see
`presets`), seeds and budget: each is checked here and a problem is a `UsageError`
naming what is valid, before any data is loaded or model trained, so bad input writes
nothing. The result, a `Submission`, is plain data the later stages take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import registry
from ..data.registry import has_validation
from ..errors import UsageError
from ..isolation.protocol import MethodRef
from ..method import Method, instantiate, read_sets
from ..scenario import Scenario, load
from . import presets


@dataclass(frozen=True)
class Submission:
    """A validated request, ready to run."""

    scenario: Scenario
    entry: registry.MethodEntry
    method: Method
    params: dict[str, Any]  # the validated hyperparameters, JSON types
    preset: str | None  # the preset key applied, if any
    seeds: int
    budget: str | float | None  # seconds, "N%" of retrain time, or None for the default
    # Where the parameters came from (`presets`: defaults, preset, fair-tuning, user) and
    # the preset's provenance, when it has one.
    params_source: str = "defaults"
    provenance: dict[str, Any] | None = None


def method_ref(entry: registry.MethodEntry) -> MethodRef:
    """The protocol's name for a registered method."""
    return MethodRef(entry.name, entry.value, entry.distribution, entry.version)


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


def _check_reads(name: str, cls: type[Method], scenario: Scenario) -> None:
    """A valid `reads`, and a validation set in the scenario when the method reads one."""
    try:
        sets = read_sets(cls.reads)
    except UsageError as exc:
        raise UsageError(f"method '{name}' declares {exc}") from None
    if "validation" in sets and not has_validation(scenario.data):
        raise UsageError(
            f"method '{name}' reads a validation set (reads = {cls.reads!r}) and scenario "
            f"'{scenario.name}' has none: choose a scenario with one (the built-in digits, "
            "MNIST-1D and CIFAR scenarios), or set `validation_fraction` under "
            "[data.options] in the scenario file"
        )


def precheck(
    method_name: str,
    scenario_ref: str | Scenario,
    seeds: int | None = None,
    budget: str | None = None,
) -> tuple[Scenario, registry.MethodEntry]:
    """The checks that need no plugin import (nor torch): the scenario (returned, loaded),
    the method's name (its entry returned), seeds and budget. `plan` makes them too; the
    CLI makes them first, so that bad input starts no helper process."""
    scenario = scenario_ref if isinstance(scenario_ref, Scenario) else load(scenario_ref)
    entry = registry.get(method_name)
    if seeds is not None and seeds < 1:
        raise UsageError(f"--seeds {seeds}: give at least 1")
    parse_budget(budget)
    return scenario, entry


def plan(
    method_name: str,
    scenario_ref: str | Scenario,
    seeds: int | None = None,
    budget: str | None = None,
    params: dict[str, str] | None = None,
    use_preset: bool = True,
    preset_file: str | None = None,
    *,
    entry: registry.MethodEntry | None = None,
) -> Submission:
    """Validate everything a submission needs; raises UsageError naming what is valid.
    `scenario_ref` is a built-in name, a .toml path or an already loaded `Scenario`;
    `preset_file` a preset's path or name (`presets.load`), instead of the built-in one;
    `entry`, the method's registry entry when `precheck` has looked it up."""
    scenario = scenario_ref if isinstance(scenario_ref, Scenario) else load(scenario_ref)
    entry = entry if entry is not None and entry.name == method_name else registry.get(method_name)
    cls = entry.load()
    preset, merged = None, {}
    source, provenance = "defaults", None
    if preset_file is not None:
        preset, merged, source, provenance = _from_file(preset_file, method_name, scenario)
    elif use_preset and isinstance(cls, type) and issubclass(cls, Method):
        preset, merged = cls.preset_for(scenario.data.dataset, scenario.forget.rule)
        if preset is not None:
            source = "preset"
            if preset in cls.preset_sources:
                provenance = presets.load_builtin(cls.preset_sources[preset])["provenance"]
                source = provenance.get("source", "preset")
    if params:
        source = "user" if source == "defaults" else f"{source}+user"
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
    _check_reads(method_name, type(method), scenario)
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
        source,
        provenance,
    )


def _from_file(ref: str, method_name: str, scenario: Scenario):
    """(name, values, source, provenance) of a preset file, checked against the request."""
    doc = presets.load(ref)
    if doc["method"] != method_name:
        raise UsageError(
            f"preset {ref} is for method '{doc['method']}', not '{method_name}': give a "
            f"preset made by `mu-bench tune {method_name}`"
        )
    provenance = doc["provenance"]
    tuned_on = (provenance.get("tuning_set") or {}).get("scenario_hash")
    if tuned_on is not None and tuned_on == scenario.content_hash:
        raise UsageError(
            f"preset {ref} was tuned on this scenario's own forget set: score it on the "
            "scenario it was tuned for, whose forget set it never saw"
        )
    source = presets.FAIR if provenance.get("source") == presets.FAIR else "user"
    return doc.get("name") or ref, dict(doc["params"]), source, provenance
