"""Stage 1, plan: validate everything a submission needs before any compute.

Scenario, method, hyperparameters (the preset for the scenario's setting, or a preset
file given with `--preset`, then `--param`; where they came from is kept, see
`presets`), seeds, budget and resource limits: each is checked here and a problem is a
`UsageError` naming what is valid, before any data is loaded or model trained, so bad
input writes nothing. The method is described by a sandboxed worker (`describe`: the
harness never imports plugin code; a preset file's values travel in the request, and the
worker names the shipped file a built-in preset came from), for the scenario's
architecture, which is known from the scenario alone (`scenario_spec`), so the
architecture the method returns is resolved here too. The result, a `Submission`, is
plain data the later stages take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import registry
from ..budget import parse_budget
from ..data.registry import has_validation
from ..errors import UsageError
from ..isolation.protocol import Limits, MethodInfo, MethodRef
from ..method import read_sets
from ..scenario import LimitsConfig, Scenario, load
from . import presets

if TYPE_CHECKING:
    from ..models.spec import ModelSpec


@dataclass(frozen=True)
class Submission:
    """A validated request, ready to run."""

    scenario: Scenario
    entry: registry.MethodEntry
    method: MethodInfo  # the method's own declarations, from its sandboxed inspection
    params: dict[str, Any]  # the validated hyperparameters, JSON types
    preset: str | None  # the preset key applied, if any
    seeds: int
    budget: str | float | None  # seconds, "N%" of retrain time, or None for the default
    limits: LimitsConfig = LimitsConfig()  # the scenario's, `--memory` applied
    require_sandbox: bool = False  # refuse to run a job where the kernel offers none
    # Where the parameters came from (`presets`: defaults, preset, fair-tuning, user) and
    # the preset's provenance, when it has one.
    params_source: str = "defaults"
    provenance: dict[str, Any] | None = None

    def worker_limits(self, budget: float, **clock: float) -> Limits:
        """The limits every job of this submission runs under (`budget`: seconds)."""
        return Limits(
            budget,
            **clock,
            memory_bytes=self.limits.memory,
            file_bytes=self.limits.file_size,
            log_bytes=self.limits.log_size,
            max_processes=self.limits.processes,
            require_sandbox=self.require_sandbox,
        )


def method_ref(entry: registry.MethodEntry) -> MethodRef:
    """The protocol's name for a registered method."""
    return MethodRef(entry.name, entry.value, entry.distribution, entry.version)


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


def scenario_spec(scenario: Scenario) -> ModelSpec:
    """The scenario's architecture, from its sections and its dataset's declared input
    shape and classes (nothing loaded; `prepare` checks it against the data)."""
    from ..data.registry import signature
    from ..models.registry import spec_for

    shape, classes = signature(scenario.data)
    return spec_for(scenario.model, shape, classes)


def describe_method(
    entry: registry.MethodEntry,
    scenario: Scenario | None = None,
    params: dict[str, Any] | None = None,
    use_preset: bool = True,
    limits: LimitsConfig | None = None,
    require_sandbox: bool = False,
    *,
    preset: tuple[str, dict[str, Any]] | None = None,
    candidates: tuple[dict[str, Any], ...] = (),
    detail: bool = False,
) -> MethodInfo:
    """The method's sandboxed description, for `scenario` when given (its preset, or
    `preset`'s (name, values) instead; its architecture), each of `candidates` validated
    alone; raises UsageError when the plugin cannot be imported or described."""
    from ..isolation.describe import INSPECT_LIMITS, InspectionFailed, describe

    caps = limits or LimitsConfig()
    try:
        return describe(
            method_ref(entry),
            params,
            use_preset=use_preset and scenario is not None,
            dataset=scenario.data.dataset if scenario else None,
            forget_rule=scenario.forget.rule if scenario else None,
            model_specs=(scenario_spec(scenario).to_dict(),) if scenario else (),
            preset_name=preset[0] if preset else None,
            preset_values=preset[1] if preset else None,
            candidates=candidates,
            detail=detail,
            limits=Limits(
                **INSPECT_LIMITS,
                memory_bytes=caps.memory,
                file_bytes=caps.file_size,
                log_bytes=caps.log_size,
                max_processes=caps.processes,
                require_sandbox=require_sandbox,
            ),
        )
    except InspectionFailed as exc:
        what = "failed to import" if exc.status == "error" else "could not be inspected:"
        raise UsageError(
            f"method '{entry.name}' (from {entry.distribution} {entry.version}) {what} "
            f"{entry.value}: {exc}"
        ) from None


def _check_reads(name: str, reads: str, scenario: Scenario) -> None:
    """A valid `reads`, and a validation set in the scenario when the method reads one."""
    try:
        sets = read_sets(reads)
    except UsageError as exc:
        raise UsageError(f"method '{name}' declares {exc}") from None
    if "validation" in sets and not has_validation(scenario.data):
        raise UsageError(
            f"method '{name}' reads a validation set (reads = {reads!r}) and scenario "
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
    memory: str | int | None = None,
    require_sandbox: bool = False,
) -> Submission:
    """Validate everything a submission needs; raises UsageError naming what is valid.
    `scenario_ref` is a built-in name, a .toml path or an already loaded `Scenario`;
    `preset_file` a preset's path or name (`presets.load`), instead of the built-in one;
    `entry`, the method's registry entry when `precheck` has looked it up; `memory`
    overrides the scenario's worker memory cap ("6 GiB", bytes)."""
    scenario = scenario_ref if isinstance(scenario_ref, Scenario) else load(scenario_ref)
    entry = entry if entry is not None and entry.name == method_name else registry.get(method_name)
    source, provenance, from_file = "defaults", None, None
    if preset_file is not None:
        name, values, source, provenance = _from_file(preset_file, method_name, scenario)
        from_file = (name, values)
    if seeds is not None and seeds < 1:
        raise UsageError(f"--seeds {seeds}: give at least 1")
    parsed_budget = parse_budget(budget)
    limits = scenario.limits
    if memory is not None:
        from ..scenario import parse_size

        try:
            limits = limits.model_copy(update={"memory": parse_size(memory)})
        except ValueError as exc:
            raise UsageError(f"--memory: {exc}") from None
    info = describe_method(
        entry, scenario, params, use_preset, limits, require_sandbox, preset=from_file
    )
    if info.problem:
        raise UsageError(info.problem)
    _check_reads(method_name, info.reads, scenario)
    if from_file is None and info.preset is not None:
        source = "preset"
        if info.preset_source is not None:
            provenance = _builtin_provenance(method_name, info.preset_source)
            source = provenance.get("source", "preset")
    if params:
        source = "user" if source == "defaults" else f"{source}+user"
    if info.default_budget is not None:
        try:
            parse_budget(info.default_budget)
        except UsageError:
            raise UsageError(
                f"method '{method_name}' declares default_budget = {info.default_budget!r}: "
                "give seconds (e.g. '30') or a percentage of the retrain time (e.g. '150%')"
            ) from None
    return Submission(
        scenario,
        entry,
        info,
        info.params,
        info.preset,
        seeds or scenario.submit.seeds,
        parsed_budget,
        limits,
        require_sandbox,
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


def _builtin_provenance(method_name: str, name: str) -> dict[str, Any]:
    """The provenance of the shipped preset file `name` (a method's `preset_sources`
    entry, as its worker reported it: only a shipped file's name is read)."""
    shipped = presets.builtin_names()
    if name not in shipped:
        raise UsageError(
            f"method '{method_name}' names '{name}' in its preset_sources, which is not a "
            f"preset shipped in mu_bench/presets/ ({', '.join(shipped) or 'none'})"
        )
    return presets.load_builtin(name)["provenance"]
