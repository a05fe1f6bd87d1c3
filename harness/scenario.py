"""Scenarios: small declarative TOML files validated into frozen pydantic models.

A scenario fixes the dataset, architecture, training recipe, forget-set rule, number of
gold models (and whether a second, independent set is trained for the forget-quality
ceiling), the LiRA IN models, default budget, a worker's resource limits and root seed;
optionally a stream of deletion requests (`[stream]`) that deletes the forget set in
several requests, or a family of forget sets (`[family]`: several draws of the forget
rule, each submitted and scored as its own scenario, `submission.family`).
Built-ins live in `scenarios/*.toml` inside the package; any path to a `.toml` file
works too. Loading takes milliseconds and imports neither torch nor the datasets. Each
section's schema belongs to its concern (`data`, `forget`: `mu_bench.data`; `model`:
`mu_bench.models`; `train`: `mu_bench.toolkit.recipe`); this module composes them and
adds the rest.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated

import tomllib
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from .data import registry as data_registry
from .data.dataset import DataConfig
from .data.forget import ForgetConfig
from .errors import UsageError, did_you_mean
from .hashing import content_hash
from .models import registry as model_registry
from .models.params import ModelConfig
from .toolkit.recipe import TrainConfig
from .validation import describe_errors


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class RelearnSection(_Section):
    """The relearning attack run on every submitted and gold model at evaluation
    (`evaluation.relearning`): `steps` fine-tuning steps with the scenario's recipe on
    the retain set, and on the retain set plus `slice_fraction` of the forget set;
    0 turns it off (the default: on in the CPU scenarios, where it costs about 0.05 s
    a model)."""

    steps: int = Field(0, ge=0, le=100_000)
    slice_fraction: float = Field(0.1, gt=0, le=0.2)


class BudgetConfig(_Section):
    seconds: float = Field(gt=0)


class SubmitConfig(_Section):
    seeds: int = Field(3, ge=1, le=4096)


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|K|KB|KiB|M|MB|MiB|G|GB|GiB|T|TB|TiB)?\s*", re.I)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: int | str) -> int:
    """Bytes from a size: a number of bytes, or "4 GiB", "512MiB", "6G" (powers of 1024).
    Raises ValueError naming the valid forms."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.fullmatch(str(value)) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(
            f"size {value!r} is not valid: give bytes (an integer) or a number with a unit "
            "such as '4 GiB', '512 MiB' or '6G'"
        )
    unit = (match.group(2) or "").lower()[:1]
    return int(float(match.group(1)) * _UNITS[unit])


Size = Annotated[int, BeforeValidator(parse_size)]


class LimitsConfig(_Section):
    """What one worker may use (`isolation.sandbox`): each breach ends its seed `crashed`
    with the limit named. Not part of the content hash: a limit changes whether a seed
    runs, not what it computes."""

    memory: Size = 4 << 30  # the worker's private memory (torch alone takes ~0.9 GiB)
    file_size: Size = 1 << 30  # the largest file a worker may write
    log_size: Size = 16 << 20  # stdout and stderr, each; cut with a marker past it
    processes: int = Field(1, ge=1, le=4096)  # 1: no process but the worker itself


class StreamConfig(_Section):
    """A stream of deletion requests (`[stream]`): the scenario's forget set, drawn by its
    `[forget]` rule, arrives as `requests` requests one after another, in an order drawn
    from the scenario's seed; request r holds |D_f| // requests examples, the first
    |D_f| % requests requests one more (`submission.stream.request_indices`). After
    request r the model is scored against gold models retrained without requests
    0..r, `[gold] seeds` of them per prefix (the last prefix's are the scenario's own
    gold models)."""

    requests: int = Field(ge=1, le=1000)


class FamilyConfig(_Section):
    """A family of forget sets (`[family]`): the draws of the scenario's `[forget]` rule
    (`data.forget`: draw 0 is the scenario's own set, draw k another set of the same rule,
    disjoint from draw 0) that a submission runs on, one member scenario each
    (`submission.family`). `draws` is a count N (draws 0..N-1) or a list of distinct draw
    numbers (to leave out fair tuning's draw 1, say)."""

    draws: int | tuple[int, ...]

    @model_validator(mode="after")
    def _valid(self) -> FamilyConfig:
        d = self.draws
        if isinstance(d, int):
            if not 2 <= d <= 1000:
                raise ValueError(f"draws = {d}: give a count from 2 to 1000, or a list of draws")
            return self
        if len(d) < 2 or len(set(d)) != len(d) or any(not 0 <= k <= 1000 for k in d):
            raise ValueError(
                f"draws = {list(d)}: give at least two distinct draw numbers from 0 to 1000"
            )
        return self

    @property
    def members(self) -> tuple[int, ...]:
        """The draw numbers, in order."""
        return tuple(range(self.draws)) if isinstance(self.draws, int) else tuple(self.draws)


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
    relearn: RelearnSection = RelearnSection()
    budget: BudgetConfig
    submit: SubmitConfig = SubmitConfig()
    limits: LimitsConfig = LimitsConfig()
    stream: StreamConfig | None = None  # a stream of deletion requests instead of one
    family: FamilyConfig | None = None  # several forget sets, each scored, then aggregated
    # The TOML text it was parsed from (the store keeps it beside each submission).
    _source: str = PrivateAttr("")

    @property
    def source_text(self) -> str:
        return self._source

    @model_validator(mode="after")
    def _lira_needs_gold(self) -> Scenario:
        # Each gold model is scored against Gaussians fitted to the other gold models.
        if self.lira.in_models and self.gold.seeds < 3:
            raise ValueError("[lira] needs [gold] seeds >= 3 (the OUT models)")
        return self

    @model_validator(mode="after")
    def _stream_fits(self) -> Scenario:
        # A count is known before the data is loaded; a fraction or a class is checked
        # when the split is drawn (`submission.stream.request_indices`).
        count = self.forget.count
        if self.stream is not None and count is not None and self.stream.requests > count:
            raise ValueError(
                f"[stream] requests = {self.stream.requests} exceeds the forget set's "
                f"{count} examples: each request deletes at least one"
            )
        return self

    @model_validator(mode="after")
    def _family_fits(self) -> Scenario:
        # Each member's fit to the data (a class left, enough examples) is checked when
        # its split is drawn, before anything is trained (`submission.family.check_family`).
        if self.family is None:
            return self
        if self.stream is not None:
            raise ValueError("[family] and [stream] exclude each other: give one")
        if self.forget.draw:
            raise ValueError(
                "[family] draws are numbered from the scenario's own forget set: leave "
                "forget.draw out (draw 0) and list the draws under [family]"
            )
        fraction = self.forget.fraction
        if fraction is not None and (max(self.family.members) + 1) * fraction > 1:
            raise ValueError(
                f"[family] draw {max(self.family.members)} of a {fraction} forget fraction "
                f"is impossible (the draws are disjoint): the largest draw is "
                f"{int(1 / fraction) - 1}"
            )
        return self

    def section_hash(self, *sections: str) -> str:
        """Content hash of the named sections (plus the root seed): keys cached artifacts."""
        payload = {s: getattr(self, s).model_dump(mode="json") for s in sections}
        payload["seed"] = self.seed
        return content_hash(payload)

    @property
    def content_hash(self) -> str:
        """Hash of everything that changes results (not the name, summary or provenance)."""
        sections = ("data", "forget", "model", "train", "gold", "lira", "relearn")
        # Only when present, so that the hashes of scenarios without them stay put.
        extra = tuple(s for s in ("stream", "family") if getattr(self, s) is not None)
        return self.section_hash(*sections, *extra)


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
    for problem in (
        data_registry.validate(scenario.data),
        model_registry.validate(scenario.model),
    ):
        if problem:
            raise UsageError(f"scenario file {origin} is invalid:\n  {problem}")
    if scenario.family is not None and scenario.forget.rule == "class":
        _check_class_family(scenario, origin)
    scenario._source = text
    return scenario


def _check_class_family(scenario: Scenario, origin: str) -> None:
    """Every draw of a class family names classes the dataset has (known from its
    declared signature: nothing is loaded)."""
    from .data.forget import drawn_classes

    _, classes = data_registry.signature(scenario.data)
    for k in scenario.family.members:
        forget = scenario.forget.model_copy(update={"draw": k})
        try:
            drawn_classes(forget, classes)
        except UsageError as exc:
            m = len(scenario.forget.classes or ())
            raise UsageError(
                f"scenario file {origin} is invalid:\n  [family] {exc}; with {m} class(es) "
                f"per set the draws are 0..{classes // m - 1}"
            ) from None


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
