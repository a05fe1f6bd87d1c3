"""Scenarios: small declarative TOML files validated into frozen pydantic models.

A scenario fixes the dataset, architecture, training recipe, forget-set rule, number
of gold models (and whether a second, independent set is trained for the forget-quality
ceiling), the LiRA IN models, default budget and root seed. Built-ins live in `scenarios/*.toml`
inside the package; any path to a `.toml` file works too. Loading takes milliseconds
and imports neither torch nor the datasets.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import UsageError, did_you_mean
from .validation import describe_errors


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    dataset: str
    test_fraction: float = Field(0.2, gt=0, lt=1)
    options: dict[str, Any] = Field(default_factory=dict)


class ForgetConfig(_Section):
    rule: Literal["random", "class"]
    fraction: float | None = Field(None, gt=0, lt=1)
    count: int | None = Field(None, gt=0)
    classes: tuple[int, ...] | None = None

    @model_validator(mode="after")
    def _rule_fields(self) -> ForgetConfig:
        if self.rule == "random":
            if (self.fraction is None) == (self.count is None):
                raise ValueError("rule 'random' takes exactly one of 'fraction' or 'count'")
            if self.classes is not None:
                raise ValueError("rule 'random' does not take 'classes'")
        else:
            if not self.classes:
                raise ValueError("rule 'class' needs a non-empty 'classes' list")
            if self.fraction is not None or self.count is not None:
                raise ValueError("rule 'class' takes 'classes' only, not 'fraction' or 'count'")
        return self


class ModelConfig(BaseModel):
    """`arch` plus that architecture's own keys, validated by `mu_bench.models`."""

    model_config = ConfigDict(extra="allow", frozen=True)
    arch: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainConfig(_Section):
    """The recipe for the original model and every gold model."""

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    schedule: Literal["constant", "cosine", "multistep", "onecycle"] = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = Field(0.1, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    augment: Literal["none", "crop-flip"] = "none"


class GoldConfig(_Section):
    seeds: int = Field(8, ge=1, le=4096)
    # Also train a second, independent set of `seeds` gold models (their own seed
    # stream): `forget_quality_ceiling` scores one gold set against the other.
    ceiling: bool = False


class LiraConfig(_Section):
    """The per-example likelihood-ratio attack (LiRA): `in_models` originals trained on
    the full training set with other seeds; 0 turns the attack off."""

    in_models: int = Field(0, ge=0, le=4096)
    # One variance per side over all examples instead of one per example (LiRA's
    # "fixed variance" variant, which its authors recommend with few shadow models).
    fix_variance: bool = False

    @model_validator(mode="after")
    def _enough(self) -> LiraConfig:
        if self.in_models == 1:
            raise ValueError("in_models = 1 cannot give a variance: use 0 (off) or at least 2")
        return self


class BudgetConfig(_Section):
    seconds: float = Field(gt=0)


class SubmitConfig(_Section):
    seeds: int = Field(3, ge=1, le=4096)


class Scenario(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    summary: str
    provenance: str = ""
    seed: int = 0
    data: DataConfig
    forget: ForgetConfig
    model: ModelConfig
    train: TrainConfig
    gold: GoldConfig = GoldConfig()
    lira: LiraConfig = LiraConfig()
    budget: BudgetConfig
    submit: SubmitConfig = SubmitConfig()

    @model_validator(mode="after")
    def _lira_needs_gold(self) -> Scenario:
        # Each gold model is scored against Gaussians fitted to the other gold models.
        if self.lira.in_models and self.gold.seeds < 3:
            raise ValueError("[lira] needs [gold] seeds >= 3 (the OUT models)")
        return self

    def section_hash(self, *sections: str) -> str:
        """Content hash of the named sections (plus the root seed): keys cached artifacts."""
        payload = {s: getattr(self, s).model_dump(mode="json") for s in sections}
        payload["seed"] = self.seed
        return _hash(payload)

    @property
    def content_hash(self) -> str:
        """Hash of everything that changes results (not the name, summary or provenance)."""
        return self.section_hash("data", "forget", "model", "train", "gold", "lira")


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def builtin_names() -> list[str]:
    folder = resources.files("mu_bench") / "scenarios"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def parse(text: str, origin: str) -> Scenario:
    """Parse and validate TOML text; errors name `origin`, the key and what is allowed."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"scenario file {origin} is not valid TOML: {exc}") from None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = "\n  ".join(describe_errors(Scenario, exc))
        raise UsageError(f"scenario file {origin} is invalid:\n  {problems}") from None
    from .datasets import validate_data_config
    from .models import validate_model_config

    for check in (validate_data_config, validate_model_config):
        problem = check(scenario)
        if problem:
            raise UsageError(f"scenario file {origin} is invalid:\n  {problem}")
    return scenario


def load(ref: str) -> Scenario:
    """A built-in scenario by name, or a scenario file by path."""
    path = Path(ref)
    if ref.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise UsageError(f"scenario file {ref} does not exist")
        return parse(path.read_text(), str(path))
    names = builtin_names()
    if ref not in names:
        raise UsageError(
            f"unknown scenario '{ref}'.{did_you_mean(ref, names)} "
            f"Valid scenarios: {', '.join(names)}; or give a path to a .toml file."
        )
    text = (resources.files("mu_bench") / "scenarios" / f"{ref}.toml").read_text()
    return parse(text, f"<built-in {ref}>")


DEFAULT_SCENARIO = "digits-random10"
