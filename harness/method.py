"""The plugin contract: a `Method` is a pydantic model of typed hyperparameters plus
`unlearn(task) -> nn.Module`.

```python
class FineTune(Method):
    \"\"\"Fine-tune on the retain set only (NeurIPS 2023 starting-kit baseline).\"\"\"
    reads: ClassVar[Reads] = "retain"
    epochs: int = 5
    lr: float = Field(0.1, gt=0)

    def unlearn(self, task: UnlearnTask) -> nn.Module: ...
```

Class-level declarations (not hyperparameters):
- `reads`: which sets the method may see: "none", "forget", "retain" or "both" (forget
  and retain), each optionally with "+validation" ("validation" alone too), the
  scenario's validation set (held out of the training data, never the test set); the
  harness hands it only those, and a method that reads a validation set runs only on a
  scenario that has one.
- `presets`: hyperparameters for a setting, kept apart from the field defaults, which
  stay the paper's: keyed by dataset (`"digits"`: tuned for both digits scenarios) or
  by dataset and forget rule (`"cifar10-class"`, `"cifar100-random"`: a paper's own
  values for that setting), the latter winning (`preset_for`).
- `search_space`: the fields `mu-bench tune` searches, each as `--space` takes it
  ("log:1e-3:0.3", "float:0:1", "int:1:10", "choice:32,64,128"); `preset_sources`:
  which presets fair tuning derived (preset key -> the preset file shipped in
  `mu_bench/presets/`, its provenance), so the board says so.
- `default_budget`: the budget when the user gives no `--budget`, as `--budget` takes
  it ("150%" of the measured retrain time, or seconds), and never less than the
  scenario's own budget; None (most methods): the scenario's budget. `retrain` sets
  "150%" so that the oracle runs its whole recipe on any scenario.
- `scope`: "any", or "class" for methods that only claim class forgetting; on a
  random-forgetting scenario they still run and the leaderboard marks them out of scope.
- `ignores_seed`: True for a method that returns the same model whatever its seed, on
  purpose (`noop`, a closed-form update). Its N models are one point mass, so its
  forget quality is 0 by the challenge's rule; `mu-bench check` warns about it, and
  fails a method that ignores its seed without declaring it.
- `output_spec(spec)`: the architecture the method returns, when it is not the
  scenario's (an ensemble, say). The harness rebuilds that architecture from the spec
  and loads the returned weights into it; anything else is an `invalid` result.

Optional training stage (methods that change training itself, SISA): `train(task:
TrainTask) -> nn.Module` runs once per (training set, method, training fields, seed)
in a worker at prepare time and is cached (`method_training.py`); `unlearn` then starts
from the model it returned. `train_fields` names the fields that change what `train`
does (None: all of them), so changing another field reuses the cached stage;
`train_version` is bumped when the training code changes.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import UsageError
from .validation import describe_errors

if TYPE_CHECKING:
    from torch import nn

    from .models import ModelSpec
    from .task import TrainTask, UnlearnTask

Reads = Literal[
    "none",
    "forget",
    "retain",
    "both",
    "validation",
    "forget+validation",
    "retain+validation",
    "both+validation",
]
Scope = Literal["any", "class"]
# The sets each `reads` value grants.
READ_SETS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "forget": frozenset({"forget"}),
    "retain": frozenset({"retain"}),
    "both": frozenset({"forget", "retain"}),
}
READ_SETS.update({f"{k}+validation": v | {"validation"} for k, v in list(READ_SETS.items())})
READ_SETS["validation"] = READ_SETS.pop("none+validation")


def read_sets(reads: str) -> frozenset[str]:
    """The sets a `reads` value grants ("both+validation" -> forget, retain, validation);
    a UsageError naming the valid values for anything else."""
    if reads not in READ_SETS:
        raise UsageError(
            f"reads = {reads!r} is not valid: give one of {', '.join(map(repr, READ_SETS))}"
        )
    return READ_SETS[reads]


class Method(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    reads: ClassVar[Reads] = "both"
    scope: ClassVar[Scope] = "any"
    ignores_seed: ClassVar[bool] = False
    # Values for a setting, applied over the field defaults (the papers' values): keyed by
    # dataset ({"digits": {"lr": 0.01}}) or by "<dataset>-<forget rule>" ({"cifar10-class":
    # ...}), which wins over the dataset's key. `--param` wins over both.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    search_space: ClassVar[dict[str, str]] = {}
    preset_sources: ClassVar[dict[str, str]] = {}
    default_budget: ClassVar[str | None] = None
    train_fields: ClassVar[tuple[str, ...] | None] = None
    train_version: ClassVar[str] = "1"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} does not implement unlearn(task)")

    def train(self, task: TrainTask) -> nn.Module:
        """Optional training stage; a method without one leaves this as it is."""
        raise NotImplementedError(f"{type(self).__name__} has no training stage")

    def output_spec(self, spec: ModelSpec) -> ModelSpec:
        return spec

    @classmethod
    def preset_for(cls, dataset: str, rule: str) -> tuple[str | None, dict[str, Any]]:
        """The preset a scenario on `dataset` with forget rule `rule` ("random" or "class")
        gets: `presets[f"{dataset}-{rule}"]` if there is one, else `presets[dataset]`;
        returns (the key used, a copy of its values), or (None, {}) when neither exists."""
        for key in (f"{dataset}-{rule}", dataset):
            if key in cls.presets:
                return key, dict(cls.presets[key])
        return None, {}

    @classmethod
    def summary(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @classmethod
    def describe_fields(cls) -> str:
        parts = []
        for name, f in cls.model_fields.items():
            kind = getattr(f.annotation, "__name__", str(f.annotation))
            parts.append(f"{name}: {kind} = {f.default!r}")
        return ", ".join(parts) or "(none)"


def has_training_stage(cls: type[Method]) -> bool:
    """True when the method overrides `Method.train`."""
    return getattr(cls, "train", Method.train) is not Method.train


def parse_params(pairs: list[str]) -> dict[str, str]:
    """`["lr=0.01", "epochs=3"]` -> `{"lr": "0.01", "epochs": "3"}` (values stay strings)."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param '{pair}' is not of the form name=value")
        params[name.strip()] = value.strip()
    return params


def instantiate(cls: type[Method], name: str, params: dict[str, Any]) -> Method:
    """Validate hyperparameters against the method's typed fields (strings are coerced)."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise UsageError(f"method '{name}' is {cls!r}, not a subclass of mu_bench.method.Method")
    unknown = sorted(set(params) - set(cls.model_fields))
    if unknown:
        from .errors import did_you_mean

        hint = did_you_mean(unknown[0], list(cls.model_fields))
        raise UsageError(
            f"method '{name}' has no parameter '{unknown[0]}'.{hint} "
            f"Valid parameters: {cls.describe_fields()}"
        )
    try:
        return cls.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(describe_errors(cls, exc))
        raise UsageError(
            f"bad parameter for method '{name}': {problems}. "
            f"Valid parameters: {cls.describe_fields()}"
        ) from None


def method_detail(cls: type[Method]) -> dict[str, Any]:
    """What `mu-bench methods NAME` shows of a method: its declarations, its fields (type,
    default, constraints, description), its presets per setting and its documentation,
    as JSON values. Computed in the sandboxed worker that imported the plugin."""
    import sys

    from pydantic_core import to_jsonable_python

    fields = []
    for field_name, f in cls.model_fields.items():
        limits = [
            f"{op} {getattr(m, op)}"
            for m in f.metadata
            for op in ("gt", "ge", "lt", "le", "min_length", "max_length")
            if getattr(m, op, None) is not None
        ]
        kind = getattr(f.annotation, "__name__", None) or str(f.annotation).replace("typing.", "")
        fields.append(
            {
                "name": field_name,
                "type": kind,
                "default": f.default if f.default_factory is None else f.default_factory(),
                "constraints": ", ".join(limits),
                "description": f.description or "",
            }
        )
    module = sys.modules.get(cls.__module__)
    detail = {
        "reads": cls.reads,
        "scope": cls.scope,
        "ignores_seed": cls.ignores_seed,
        "default_budget": cls.default_budget,
        "training_stage": has_training_stage(cls),
        "train_fields": list(cls.train_fields) if cls.train_fields is not None else None,
        "fields": fields,
        "presets": {k: dict(v) for k, v in cls.presets.items()},
        "doc": inspect.getdoc(module) or inspect.getdoc(cls) or "",
    }
    return to_jsonable_python(detail, fallback=repr)
