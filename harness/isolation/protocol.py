"""The one protocol between the harness and a worker: what goes in, what comes back.

A *request* is what a worker process is asked to do, written as `request.json` in the
job's folder: an `UnlearnRequest` (run `Method.unlearn` on one seed), a `TrainRequest`
(run a method's training stage, `Method.train`) or a `TrainModelRequest` (train one of
a scenario's own models from scratch with harness code: prepare's original, gold and
IN models, so that they too can run on any executor). The worker answers with
a `WorkerResult` in `output/result.json`. Both are untrusted on the way back: the
harness parses a result with `WorkerResult.from_json`, which rejects anything
malformed, and measures what it records itself (see `runner`).

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
STARTED = "started"  # written by the worker just before the timed call
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
        kinds = {c.kind: c for c in (UnlearnRequest, TrainRequest, TrainModelRequest)}
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


Request = UnlearnRequest | TrainRequest | TrainModelRequest


def parse_request(doc: dict[str, Any]) -> Request:
    return _Request.from_json(doc)


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


@dataclass(frozen=True)
class Limits:
    """The clock a runner holds a job to."""

    budget: float  # seconds for the timed call
    grace: float = 2.0  # slack past the budget before the kill starts
    term_grace: float = 3.0  # SIGTERM -> SIGKILL
    startup: float = 300.0  # interpreter start, imports and loading the inputs
    poll: float = 0.02

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
    seconds: float | None = None  # the timed call (worker's clock, capped by the wall)
    wall_seconds: float | None = None  # measured outside: `started` to exit
    startup_seconds: float | None = None  # measured outside: start to `started`
    error: str | None = None
    traceback: str | None = None
    stderr_tail: str = ""
    leftovers_killed: int = 0
    reported: dict[str, float] = field(default_factory=dict)

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
