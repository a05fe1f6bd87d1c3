"""Scenarios: small declarative TOML files validated into frozen pydantic models.

A scenario fixes the dataset, architecture, training recipe, forget-set rule, number of
gold models (and whether a second, independent set is trained for the forget-quality
ceiling), the LiRA IN models, default budget, a worker's resource limits and root seed;
optionally a stream of deletion requests (`[stream]`) that deletes the forget set in
several requests.
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

    def section_hash(self, *sections: str) -> str:
        """Content hash of the named sections (plus the root seed): keys cached artifacts."""
        payload = {s: getattr(self, s).model_dump(mode="json") for s in sections}
        payload["seed"] = self.seed
        return content_hash(payload)

    @property
    def content_hash(self) -> str:
        """Hash of everything that changes results (not the name, summary or provenance)."""
        sections = ("data", "forget", "model", "train", "gold", "lira", "relearn")
        # Only when present, so that the hashes of scenarios without a stream stay put.
        return self.section_hash(*sections, *(("stream",) if self.stream else ()))


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
    scenario._source = text
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
