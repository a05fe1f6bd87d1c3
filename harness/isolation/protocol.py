"""The one protocol between the harness and a worker: what goes in, what comes back.

A *request* is what a worker process is asked to do, written as `request.json` in the
job's folder: an `UnlearnRequest` (run `Method.unlearn` on one seed), a `TrainRequest`
(run a method's training stage, `Method.train`), a `TrainModelRequest` (train one of
a scenario's own models from scratch with harness code: prepare's original, gold and
IN models, so that they too can run on any executor), an `InspectRequest` (import the
plugin, validate the user's parameters and describe the method, as plain data: the
harness never imports a plugin itself) or a `CheckRequest` (`mu-bench check`'s checks
of the method's class). The worker answers with a `WorkerResult` in
`output/result.json` (an inspection also with a `MethodInfo` in `output/method.json`,
a check request with a `CheckReport` in `output/checks.json`).
Everything that comes back is untrusted: the harness reads it with size caps, regular
files only (`runner.read_output`), parses it strictly (`from_json` rejects anything
malformed) and measures what it records itself (time: see `runner`).

A `Job` is a request plus the files it reads (name in the job folder -> source path on
the submitting machine) and its time limits; an executor runs jobs, anywhere, and
yields one `Outcome` per job: the harness's classification of how it ended. Every type
here is a frozen dataclass with `to_json` / `from_json`, and every document carries
`SCHEMA_VERSION`, so runners, workers, the fork server and remote executors agree on one
format and refuse another.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

SCHEMA_VERSION = 1
STATUSES = ("ok", "timeout", "error", "crashed", "invalid")
Status = Literal["ok", "timeout", "error", "crashed", "invalid"]

# Where things live inside a job's folder. The worker runs with `OUTPUT` as its working
# directory and writes only there; `request.json` and `inputs/` are read-only to it.
REQUEST = "request.json"
INPUTS = "inputs"
OUTPUT = "output"
RESULT = "result.json"
METHOD_INFO = "method.json"  # an inspection's answer
CHECK_REPORT = "checks.json"  # a check request's answer (`CheckReport`)
TEMP = "tmp"  # the worker's private temporary folder (TMPDIR, HOME), beside `output/`
WEIGHTS = "weights.pt"  # the module the timed call returned, as a state dict
LOGITS = "outputs.pt"  # a `TrainModelRequest`'s inference pass: {"train", "test"} logits
STATE = "state"  # a training stage's own folder (SISA's checkpoints)
STDOUT, STDERR = "stdout.log", "stderr.log"
# torch threads per worker where the request leaves them open (see `pool.threads_per_job`)
THREADS_ENV = "MU_BENCH_THREADS"


# What a method may call a number it reports (`task.report_metric`): logged as
# `method.<name>`, so it can never collide with a harness metric.
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class ProtocolError(ValueError):
    """A document that is not a valid protocol message."""


def _check_version(doc: dict[str, Any], kind: str) -> None:
    if not isinstance(doc, dict):
        raise ProtocolError(f"{kind}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ProtocolError(
            f"{kind}: schema version {doc.get('schema_version')!r}, expected {SCHEMA_VERSION}"
        )


@dataclass(frozen=True)
class MethodRef:
    """Which plugin to run: its registered name, entry point and supplying distribution."""

    name: str
    entry_point: str  # "package.module:ClassName"
    distribution: str
    version: str


@dataclass(frozen=True)
class _Request:  # the requests that run a method
    kind: ClassVar[str]
    # Whether the job trains (builds `torch.optim` optimizers, which need torch._dynamo):
    # the fork server answers a job that does not before importing torch._dynamo.
    trains: ClassVar[bool] = True
    method: MethodRef
    params: dict[str, Any]  # validated hyperparameters, JSON types
    seed: int  # the seed index: 0, 1, ..., N-1
    rng_seed: int  # derived from the seed on the request's stream
    budget_seconds: float  # the timed call's budget
    device: str
    num_classes: int
    model_spec: dict[str, Any]  # the scenario's architecture (`ModelSpec.to_dict`)
    recipe: dict[str, Any]  # the scenario's `[train]` recipe
    inputs: dict[str, str]  # role -> path relative to the job folder
    # torch's intra-op threads in the worker, set by the harness before any plugin code
    # runs (an executor's share of the machine); None: $MU_BENCH_THREADS, else torch's own
    threads: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.update(kind=self.kind, schema_version=SCHEMA_VERSION)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Request:
        _check_version(doc, "request")
        kinds = {
            c.kind: c
            for c in (UnlearnRequest, TrainRequest, TrainModelRequest, InspectRequest, CheckRequest)
        }
        target = kinds.get(doc.get("kind"))
        if target is None:
            raise ProtocolError(f"request: unknown kind {doc.get('kind')!r}")
        body = {k: v for k, v in doc.items() if k not in ("kind", "schema_version")}
        try:
            if target is not TrainModelRequest:
                body["method"] = MethodRef(**body["method"])
            return target(**body)
        except (KeyError, TypeError) as exc:
            raise ProtocolError(f"request: {exc}") from None


@dataclass(frozen=True)
class UnlearnRequest(_Request):
    """Run `unlearn()` for one seed. Inputs: `model` (the starting weights), `forget`,
    `retain` and `validation` (only the sets the method declares), and for a method with
    a training stage `trained_dir` and `index` (training-set positions of the rows)."""

    kind: ClassVar[str] = "unlearn"
    forget_classes: tuple[int, ...] | None = None
    initial_seed: int | None = None  # the original model's initialisation seed
    start_spec: dict[str, Any] | None = None  # the trained model's architecture, if other

    def __post_init__(self) -> None:
        if self.forget_classes is not None:  # JSON gives a list
            object.__setattr__(self, "forget_classes", tuple(self.forget_classes))


@dataclass(frozen=True)
class TrainRequest(_Request):
    """Run a method's training stage for one seed. Input: `train` (the whole training
    set in its original order); the stage fills `output/state/`."""

    kind: ClassVar[str] = "train"


@dataclass(frozen=True)
class TrainModelRequest:
    """Train one of the scenario's own models from scratch: harness code only, no plugin
    (`toolkit.scratch.train_from_scratch`, exactly as `prepare` trains in process), then
    its one inference pass. Inputs: `train` (the set it trains on: the whole training set
    or the retain set) and `infer` (the training and test sets' inputs, `x_train` and
    `x_test`). Outputs: `weights.pt` and `outputs.pt` (the logits of that pass)."""

    kind: ClassVar[str] = "train-model"
    trains: ClassVar[bool] = True
    role: str  # "original", "gold", "gold-holdout", "in"
    seed: int  # the model's index within its role
    rng_seed: int  # its initialisation and shuffling seed (`prepare.init_seed`)
    budget_seconds: float  # a generous limit: harness code does not hang
    device: str
    model_spec: dict[str, Any]
    recipe: dict[str, Any]
    inputs: dict[str, str]
    threads: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.update(kind=self.kind, schema_version=SCHEMA_VERSION)
        return doc


@dataclass(frozen=True)
class InspectRequest:
    """Describe a method without running it: import the plugin (in a sandboxed worker,
    never in the harness), apply the preset for `dataset`/`forget_rule` (when
    `use_preset`), validate `params` (the user's, strings or JSON values) and call
    `output_spec` on each of `model_specs` (`ModelSpec.to_dict`). `preset_values` (a
    preset file's, read by the harness) replace the built-in preset, named
    `preset_name`; each of `candidates` (a parameter set, e.g. a search space's ends)
    is validated alone, without preset. The answer is a `MethodInfo` in
    `output/method.json`. No inputs, no seed, nothing timed but the whole inspection."""

    kind: ClassVar[str] = "inspect"
    trains: ClassVar[bool] = False
    method: MethodRef
    params: dict[str, Any] = field(default_factory=dict)
    use_preset: bool = True
    dataset: str | None = None
    forget_rule: str | None = None
    model_specs: tuple[dict[str, Any], ...] = ()
    device: str = "cpu"  # the worker's start path only: an inspection does no tensor work
    preset_name: str | None = None
    preset_values: dict[str, Any] | None = None
    candidates: tuple[dict[str, Any], ...] = ()
    detail: bool = False  # also `method.method_detail` (what `mu-bench methods NAME` shows)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_specs", tuple(self.model_specs))
        object.__setattr__(self, "candidates", tuple(self.candidates))

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["model_specs"] = list(self.model_specs)
        doc["candidates"] = list(self.candidates)
        doc.update(kind=self.kind, schema_version=SCHEMA_VERSION)
        return doc


@dataclass(frozen=True)
class CheckRequest:
    """Run the plugin contract's static checks (`contract.STATIC_CHECKS`: the ones that
    need the method's class) in a sandboxed worker, never in the harness: the worker loads
    the check logic, hands over, imports the plugin, runs each check and answers with a
    `CheckReport` in `output/checks.json`. A failed import is an `error` result. No
    inputs, no seed."""

    kind: ClassVar[str] = "check"
    trains: ClassVar[bool] = False
    method: MethodRef
    device: str = "cpu"  # the worker's start path only: the checks do no tensor work

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind, "schema_version": SCHEMA_VERSION}


Request = UnlearnRequest | TrainRequest | TrainModelRequest | InspectRequest | CheckRequest


def parse_request(doc: dict[str, Any]) -> Request:
    return _Request.from_json(doc)


def _spec_dict(value: Any, what: str) -> dict[str, Any]:
    """A `ModelSpec.to_dict` document, type-checked (its architecture is checked when the
    harness builds it)."""
    ok = (
        isinstance(value, dict)
        and isinstance(value.get("arch"), str)
        and isinstance(value.get("params"), dict)
        and isinstance(value.get("input_shape"), list)
        and all(isinstance(d, int) and not isinstance(d, bool) for d in value["input_shape"])
        and isinstance(value.get("num_classes"), int)
        and set(value) == {"arch", "params", "input_shape", "num_classes"}
    )
    if not ok:
        raise ProtocolError(f"{what}: not a model spec: {str(value)[:200]}")
    return value


@dataclass(frozen=True)
class MethodInfo:
    """What an inspection says about a method: plain data the harness uses instead of the
    plugin's class. Untrusted (the plugin's own declarations, reported by its worker):
    parsed strictly, and each value only steers what the plugin itself gets (which
    sets, how long, which architecture its weights are checked against).

    `problem` is set when the parameters do not validate (the message names what is
    valid); the other fields then describe the method as far as it could be read."""

    name: str
    summary: str = ""
    fields: tuple[dict[str, str], ...] = ()  # {"name", "type", "default"} per field
    fields_text: str = "(none)"  # "lr: float = 0.1, ..." for messages and listings
    params: dict[str, Any] = field(default_factory=dict)  # validated, JSON types
    preset: str | None = None
    reads: str = "both"  # one of `method.READ_SETS` ("retain", "both+validation", ...)
    scope: Literal["any", "class"] = "any"
    train_fields: tuple[str, ...] | None = None
    train_version: str = "1"
    default_budget: str | None = None
    has_training_stage: bool = False
    # (the scenario's spec, the spec the method returns for it) pairs
    output_specs: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = ()
    problem: str | None = None
    # The shipped preset file fair tuning derived the applied preset from (its
    # `preset_sources` entry; the harness reads the file itself), if any.
    preset_source: str | None = None
    search_space: dict[str, str] = field(default_factory=dict)  # field -> `--space` text
    # One per `InspectRequest.candidates`: None (valid) or the validation message.
    candidate_problems: tuple[str | None, ...] = ()
    # The fields' defaults with the scenario's preset applied, used or not (the defaults
    # where that preset does not validate): what the board's overrides are measured from.
    standard_params: dict[str, Any] = field(default_factory=dict)
    # `method.method_detail` when asked for: JSON values, shown, never acted on.
    detail: dict[str, Any] | None = None

    MAX_TEXT: ClassVar[int] = 20_000

    def output_spec(self, spec: Any) -> Any:
        """The architecture the method returns for the scenario's `spec` (a `ModelSpec`),
        as the inspection resolved it."""
        from ..models.spec import ModelSpec

        wanted = spec.to_dict()
        for given, out in self.output_specs:
            if given == wanted:
                return ModelSpec.from_dict(out)
        raise LookupError(f"method '{self.name}' was not inspected for the model spec {wanted}")

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["fields"] = list(doc["fields"])
        doc["output_specs"] = [list(pair) for pair in self.output_specs]
        doc["candidate_problems"] = list(self.candidate_problems)
        if self.train_fields is not None:
            doc["train_fields"] = list(self.train_fields)
        return {**doc, "schema_version": SCHEMA_VERSION}

    @classmethod
    def from_json(cls, doc: Any) -> MethodInfo:
        _check_version(doc, "method info")
        body = {k: v for k, v in doc.items() if k != "schema_version"}
        unknown = set(body) - {f.name for f in fields(cls)}
        if unknown:
            raise ProtocolError(f"method info: unknown keys {sorted(unknown)}")

        def text(key: str, optional: bool = False) -> None:
            value = body.get(key)
            if value is None and optional:
                return
            if not isinstance(value, str):
                raise ProtocolError(f"method info: {key} is not a string")
            body[key] = value[: cls.MAX_TEXT]

        text("name")
        for key in ("summary", "fields_text", "train_version"):
            if key in body:
                text(key)
        for key in ("preset", "default_budget", "problem", "preset_source"):
            text(key, optional=True)
        space = body.get("search_space", {})
        if not (
            isinstance(space, dict)
            and len(space) <= 1000
            and all(isinstance(k, str) and isinstance(v, str) for k, v in space.items())
        ):
            raise ProtocolError("method info: search_space is not an object of strings")
        checked = body.get("candidate_problems", [])
        if not (
            isinstance(checked, list | tuple)
            and all(c is None or isinstance(c, str) for c in checked)
        ):
            raise ProtocolError("method info: candidate_problems is not a list of messages")
        if not isinstance(body.get("standard_params", {}), dict):
            raise ProtocolError("method info: standard_params is not an object")
        if not isinstance(body.get("detail") or {}, dict):
            raise ProtocolError("method info: detail is not an object")
        body["candidate_problems"] = tuple(
            None if c is None else c[: cls.MAX_TEXT] for c in checked
        )
        from ..method import READ_SETS

        if body.get("reads", "both") not in READ_SETS:
            raise ProtocolError(f"method info: reads {body.get('reads')!r} is not valid")
        if body.get("scope", "any") not in ("any", "class"):
            raise ProtocolError(f"method info: scope {body.get('scope')!r} is not valid")
        if not isinstance(body.get("has_training_stage", False), bool):
            raise ProtocolError("method info: has_training_stage is not a boolean")
        if not isinstance(body.get("params", {}), dict):
            raise ProtocolError("method info: params is not an object")
        names = body.get("train_fields")
        if names is not None:
            if not (isinstance(names, list | tuple) and all(isinstance(n, str) for n in names)):
                raise ProtocolError("method info: train_fields is not a list of names")
            body["train_fields"] = tuple(names)
        described = body.get("fields", [])
        if not (
            isinstance(described, list | tuple)
            and len(described) <= 1000
            and all(
                isinstance(f, dict) and all(isinstance(v, str) for v in f.values())
                for f in described
            )
        ):
            raise ProtocolError("method info: fields is not a list of {name, type, default}")
        body["fields"] = tuple(described)
        pairs = body.get("output_specs", [])
        if not isinstance(pairs, list | tuple) or not all(
            isinstance(p, list | tuple) and len(p) == 2 for p in pairs
        ):
            raise ProtocolError("method info: output_specs is not a list of pairs")
        body["output_specs"] = tuple(
            (_spec_dict(a, "method info"), _spec_dict(b, "method info")) for a, b in pairs
        )
        return cls(**body)


CHECK_STATUSES = ("pass", "warn", "fail", "skip")


@dataclass(frozen=True)
class CheckReport:
    """A check worker's answer: each static check's (name, status, detail), in order, and
    what the harness needs to plan the checks that run the method (its declarations, as
    far as the worker could read them; `is_method` False: not a `Method` subclass, the
    rest are defaults). Untrusted: it comes from the process the plugin ran in, so it is
    parsed strictly (`from_json`: exactly the expected checks, known statuses, capped
    text) and only ever shown to the author: nothing is stored or ranked on it."""

    results: tuple[tuple[str, str, str], ...]
    is_method: bool = False
    reads: str = "both"
    scope: Literal["any", "class"] = "any"
    ignores_seed: bool = False
    has_training_stage: bool = False
    train_fields: tuple[str, ...] | None = None
    # A field's other allowed strings (its `Literal` values): the stage check varies it.
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)

    MAX_TEXT: ClassVar[int] = 4000
    MAX_NAMES: ClassVar[int] = 1000

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["results"] = [list(r) for r in self.results]
        doc["choices"] = {k: list(v) for k, v in self.choices.items()}
        if self.train_fields is not None:
            doc["train_fields"] = list(self.train_fields)
        return {**doc, "schema_version": SCHEMA_VERSION}

    @classmethod
    def from_json(cls, doc: Any, expected: tuple[str, ...]) -> CheckReport:
        """Parse `doc`, which must report exactly the checks `expected`, in order."""
        _check_version(doc, "check report")
        body = {k: v for k, v in doc.items() if k != "schema_version"}
        unknown = set(body) - {f.name for f in fields(cls)}
        if unknown:
            raise ProtocolError(f"check report: unknown keys {sorted(unknown)}")

        def names(value: Any, what: str) -> tuple[str, ...]:
            if not (
                isinstance(value, list)
                and len(value) <= cls.MAX_NAMES
                and all(isinstance(n, str) and len(n) <= 200 for n in value)
            ):
                raise ProtocolError(f"check report: {what} is not a list of names")
            return tuple(value)

        results = body.get("results")
        if not (
            isinstance(results, list)
            and all(isinstance(r, list) and len(r) == 3 for r in results)
            and all(isinstance(t, str) for r in results for t in r)
        ):
            raise ProtocolError("check report: results is not a list of [check, status, detail]")
        if tuple(r[0] for r in results) != tuple(expected):
            raise ProtocolError(
                f"check report: reports {[r[0] for r in results][:20]}, not {list(expected)}"
            )
        bad = [r[1] for r in results if r[1] not in CHECK_STATUSES]
        if bad:
            raise ProtocolError(f"check report: unknown status {bad[0][:50]!r}")
        body["results"] = tuple((c, s, d[: cls.MAX_TEXT]) for c, s, d in results)
        for key in ("is_method", "ignores_seed", "has_training_stage"):
            if not isinstance(body.get(key, False), bool):
                raise ProtocolError(f"check report: {key} is not a boolean")
        reads = body.get("reads", "both")
        if not isinstance(reads, str):
            raise ProtocolError("check report: reads is not a string")
        body["reads"] = reads[:200]
        if body.get("scope", "any") not in ("any", "class"):
            raise ProtocolError(f"check report: scope {str(body.get('scope'))[:50]!r} is not valid")
        if body.get("train_fields") is not None:
            body["train_fields"] = names(body["train_fields"], "train_fields")
        choices = body.get("choices", {})
        if not (isinstance(choices, dict) and len(choices) <= cls.MAX_NAMES):
            raise ProtocolError("check report: choices is not an object")
        body["choices"] = {str(k)[:200]: names(v, "a choice") for k, v in choices.items()}
        return cls(**body)


@dataclass(frozen=True)
class WorkerResult:
    """What a worker says happened. Untrusted: parsed strictly, never believed about
    time (the runner measures the clock itself) and never about the weights (the harness
    validates them)."""

    status: Status
    seconds: float | None = None  # the timed call, measured inside the worker
    error: str | None = None
    traceback: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # `task.report_metric` values

    MAX_TEXT: ClassVar[int] = 20_000  # characters kept of an error or a traceback
    MAX_METRICS: ClassVar[int] = 64

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "schema_version": SCHEMA_VERSION}

    @classmethod
    def from_json(cls, doc: Any) -> WorkerResult:
        _check_version(doc, "result")
        status = doc.get("status")
        if status not in STATUSES:
            raise ProtocolError(f"result: unknown status {status!r}")
        seconds = doc.get("seconds")
        if seconds is not None and not (
            isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0
        ):
            raise ProtocolError(f"result: seconds {seconds!r} is not a non-negative number")
        texts = {}
        for key in ("error", "traceback"):
            value = doc.get(key)
            if value is not None and not isinstance(value, str):
                raise ProtocolError(f"result: {key} is not a string")
            texts[key] = value[: cls.MAX_TEXT] if value else value
        metrics = doc.get("metrics") or {}
        if not isinstance(metrics, dict) or len(metrics) > cls.MAX_METRICS:
            raise ProtocolError("result: metrics is not an object of at most 64 numbers")
        clean = {}
        for k, v in metrics.items():
            if not METRIC_NAME.fullmatch(str(k)):
                raise ProtocolError(f"result: metric name {k!r} is not valid")
            if not (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)):
                raise ProtocolError(f"result: metric {k!r} is not a finite number")
            clean[k] = float(v)
        return cls(status, None if seconds is None else float(seconds), **texts, metrics=clean)


GiB, MiB = 1 << 30, 1 << 20


@dataclass(frozen=True)
class Limits:
    """The clock and the caps a runner holds a job to. The caps are enforced by the
    kernel in the sandboxed worker (`isolation.sandbox`), the log cap by the runner;
    each breach ends the job `crashed` with a reason naming the limit."""

    budget: float  # seconds for the timed call
    grace: float = 2.0  # slack past the budget before the kill starts
    term_grace: float = 3.0  # SIGTERM -> SIGKILL
    startup: float = 300.0  # interpreter start, imports and loading the inputs
    poll: float = 0.02
    memory_bytes: int | None = 4 * GiB  # the worker's private memory (RLIMIT_DATA)
    file_bytes: int | None = 1 * GiB  # the largest file it may write (RLIMIT_FSIZE)
    log_bytes: int = 16 * MiB  # stdout.log and stderr.log, each; longer is cut
    max_processes: int = 1  # 1: the worker alone (threads are free)
    require_sandbox: bool = False  # refuse to run the job where the kernel offers none

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Limits:
        return cls(**doc)


@dataclass(frozen=True)
class Job:
    """A request, the files it reads and its limits: everything an executor needs to run
    it on any machine. `key` names the job within its batch ("seed-3", "train-seed-0")."""

    key: str
    request: Request
    files: dict[str, Path]  # path inside the job folder -> source on the submitting machine
    limits: Limits

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "key": self.key,
            "request": self.request.to_json(),
            "files": {k: str(v) for k, v in self.files.items()},
            "limits": self.limits.to_json(),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Job:
        _check_version(doc, "job")
        return cls(
            doc["key"],
            parse_request(doc["request"]),
            {k: Path(v) for k, v in doc["files"].items()},
            Limits.from_json(doc["limits"]),
        )


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as the harness sees it: one status, times measured outside the
    worker (and the worker's own measurement of its timed call, bounded by them), the
    error and traceback, and where its output files are on the submitting machine."""

    key: str
    seed: int
    status: Status
    folder: Path  # the job folder: `output/weights.pt`, `output/state/`
    # All three measured by the runner, outside the worker: the worker's own clock is
    # never believed. `seconds`: from the moment the worker hands over to plugin code
    # (the plugin's import included) to its exit; `startup_seconds`: start to that moment.
    seconds: float | None = None
    wall_seconds: float | None = None  # the same window as `seconds`, on every status
    startup_seconds: float | None = None
    error: str | None = None
    traceback: str | None = None
    stderr_tail: str = ""
    leftovers_killed: int = 0
    reported: dict[str, float] = field(default_factory=dict)
    sandbox: str = "none"  # the mechanism it ran under (`isolation.sandbox.MECHANISMS`)

    @property
    def weights(self) -> Path:
        return self.folder / OUTPUT / WEIGHTS

    @property
    def state(self) -> Path:
        return self.folder / OUTPUT / STATE

    def with_status(self, status: Status, error: str | None) -> Outcome:
        return replace(self, status=status, error=error)

    def to_json(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["folder"] = str(self.folder)
        return {**doc, "schema_version": SCHEMA_VERSION}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Outcome:
        _check_version(doc, "outcome")
        body = {k: v for k, v in doc.items() if k != "schema_version"}
        body["folder"] = Path(body["folder"])
        return cls(**body)
