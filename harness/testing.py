"""Check a method against the plugin contract before submitting it, after scikit-learn's
`check_estimator`: small named `check_*` functions, run on a tiny built-in scenario
(`digits-tiny`: 1,000 digits images, a small MLP; prepared once, in about a second once
warm) through the real stages: `plan` validates the parameters, `execute` runs each seed
in its own worker under the runner and validates the weights it returns.

    mu-bench check my-method             # a table of pass / warn / fail, exit 1 on a fail

and in the author's own test suite:

    from mu_bench.testing import parametrize_with_checks

    @parametrize_with_checks(["my-method"])
    def test_mu_bench_contract(check):
        check()   # raises CheckFailed on a fail, warns CheckWarning on a warning

The checks (`CHECKS`, in order): the method is registered and imports; it is a
`Method` subclass with a docstring; its declarations (`reads`, `scope`, `ignores_seed`,
`default_budget`, `train_fields`, `presets`) are well formed; it implements `unlearn`;
its defaults and every preset validate; then, running it: `unlearn` returns the
scenario's architecture (or its `output_spec`) with finite weights; it touches only the
sets it declares; the same seed gives the same model; different seeds give different
models (a method declaring `ignores_seed` gets a warning: its forget quality will be
0); given a tiny budget on enough work it stops near the budget; and for a method with a
training stage, the stage depends on the fields `train_fields` names and on no other.

Isolation: the harness never imports the plugin, built-ins included. The checks that
need the method's class (`STATIC_CHECKS`: imports, docstring, declarations, `unlearn`,
defaults, presets) run in one sandboxed check worker (`isolation.describe.check_class`,
a `CheckRequest` through the same runner and sandbox as a seed), which loads this
module's check logic, then imports the plugin, runs them (`static_report`) and answers
with a `CheckReport`: each check's (status, detail) and the declarations the runs need
(scope, reads, ignores_seed, training stage, train_fields), read with a size cap and
parsed strictly. An import that raises, crashes or hangs (`STATIC_LIMITS`) fails
`check_imports` with the reason and skips the rest. The other checks run seeds through
`plan` (its own sandboxed `describe`) and `execute`, and judge their outcomes here.
Limit: the class checks necessarily run in the plugin's own process, after its import,
so a plugin bent on it can forge their answer (a malformed or incomplete one is refused,
not a well-formed lie); the run checks it cannot forge, as their evidence is measured
here. Nothing depends on `check`'s verdict: it writes nothing to the store and only its
own scratch folders (the artifact cache gets the tiny scenario, prepared by harness
code), and `submit`, the board and the cache never consult it. An author's own test
suite (`parametrize_with_checks`) goes the same way.

Cost: one check worker (about 0.1 s once the fork server is warm) and four worker runs
per method (seeds 0 and 1, seed 0 again, the budget run), each well under a second on
digits-tiny once the fork server is warm; a training stage adds two or three stage runs
and one inspection. The checks of one method share those runs (`Subject`), so running
them all costs the same as running the slowest one.
"""

from __future__ import annotations

import atexit
import logging
import math
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .contract import STATIC_CHECKS, Status
from .contract import Unavailable as _Unavailable
from .contract import first_line as _first_line
from .errors import MuBenchError, UsageError

if TYPE_CHECKING:
    from .isolation.protocol import CheckReport, Outcome
    from .submission.plan import Submission
    from .submission.prepare import Artifacts

CHECK_SCENARIO = "digits-tiny"

# The budget run: the method gets a budget of `expected / 8` seconds, within [BUDGET_MIN,
# BUDGET_MAX], where `expected` is its unbounded call's time on data tiled (up to
# MAX_TILED rows) until that takes about BUDGET_WORK seconds; it passes when it returns
# by itself within `max(SLACK_MIN, budget)` of the budget. A call too quick for that to
# tell a method that stops from one that does not is skipped.
BUDGET_MIN, BUDGET_MAX = 0.05, 0.25
BUDGET_WORK = 2.0
SLACK_MIN = 0.25  # a busy 2-core machine delays a step by a tenth of a second or more
BUDGET_GRACE = 1.0
MAX_TILED = 20_000

log = logging.getLogger("mu_bench")
SEE_RUN = "see check_unlearn_returns_a_valid_model"


class CheckFailed(AssertionError):
    """A check failed (`Check.__call__`)."""


class CheckWarning(UserWarning):
    """A check passed with a warning (`Check.__call__`)."""


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: Status
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail}


class Subject:
    """One method under check: its entry, class and planned submission, and the worker
    runs its checks share, each made on first use. `scenario` is a built-in name or a
    .toml path (default `digits-tiny`; a class-scope method gets it with class 3 as its
    forget set); `params` are `--param` strings."""

    def __init__(
        self,
        name: str,
        *,
        scenario: str | None = None,
        params: dict[str, str] | None = None,
        use_preset: bool = True,
        device: str = "cpu",
    ) -> None:
        self.name = name
        self.scenario_ref = scenario or CHECK_SCENARIO
        self.params = dict(params or {})
        self.use_preset = use_preset
        self.device = device
        self._work: Path | None = None
        self._runs: dict[str, Any] = {}
        self._report: CheckReport | str | None = None  # a string: why there is none

    # ------------------------------------------------------------------ what it is
    @cached_property
    def entry(self):
        from . import registry

        try:
            return registry.get(self.name)
        except UsageError as exc:
            raise _Unavailable(str(exc)) from None

    def report(self) -> CheckReport:
        """The static checks' report, from one sandboxed worker (`describe.check_class`),
        made on first use; raises `_Unavailable` (the same reason each time) when the
        plugin's import raised, crashed or hung, or the report is malformed."""
        if self._report is None:
            from .isolation.describe import InspectionFailed, check_class
            from .isolation.protocol import Limits
            from .submission.plan import method_ref

            entry = self.entry
            names = tuple(STATIC_CHECKS)
            try:
                self._report = check_class(method_ref(entry), names, Limits(**STATIC_LIMITS))
            except InspectionFailed as exc:
                what = {
                    "error": "failed to import:",
                    "timeout": "did not import in time:",
                    "crashed": "crashed its worker while importing:",
                }.get(exc.status, "could not be checked:")
                where = _last_frame(exc.traceback)
                self._report = f"{entry.value} {what} {exc}" + (f" ({where})" if where else "")
        if isinstance(self._report, str):
            raise _Unavailable(self._report)
        return self._report

    def static(self, check: str) -> tuple[Status, str]:
        """A static check's (status, detail), as the check worker reported it."""
        for name, status, detail in self.report().results:
            if name == check:
                return status, detail  # type: ignore[return-value]  # parsed: a Status
        raise _Unavailable(f"the check worker did not report {check}")

    @property
    def facts(self) -> CheckReport:
        """The method's declarations, from the check worker; `_Unavailable` when the
        class is not a `Method` (or could not be examined)."""
        report = self.report()
        if not report.is_method:
            raise _Unavailable(f"{self.entry.value} is not a Method subclass")
        return report

    @cached_property
    def scenario(self):
        from .data.forget import ForgetConfig
        from .scenario import load

        scenario = load(self.scenario_ref)
        if self.scenario_ref == CHECK_SCENARIO and self.facts.scope == "class":
            forget = ForgetConfig(rule="class", classes=(3,))
            name = f"{scenario.name}-class3"
            scenario = scenario.model_copy(update={"name": name, "forget": forget})
            scenario._source = ""  # the file's text says random forgetting
        return scenario

    def plan(self, seeds: int = 2, budget: str | None = None, params=None) -> Submission:
        from .submission.plan import plan

        self.facts  # noqa: B018  # a class that is no Method gets no plan: skipped
        try:
            given = params or self.params
            return plan(self.name, self.scenario, seeds, budget, given, self.use_preset)
        except UsageError as exc:
            raise _Unavailable(f"the method's parameters do not validate: {exc}") from None

    @cached_property
    def artifacts(self) -> Artifacts:
        from .submission.prepare import prepare

        return prepare(self.scenario, self.device)

    @property
    def work(self) -> Path:
        if self._work is None:
            from .paths import work_root

            work_root().mkdir(parents=True, exist_ok=True)
            self._work = Path(tempfile.mkdtemp(prefix=f"check-{self.name}-", dir=work_root()))
            atexit.register(self.close)
        return self._work

    def close(self) -> None:
        """Remove the runs' scratch folder (also done at exit)."""
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None
            self._runs.clear()

    # ------------------------------------------------------------------ runs
    def _execute(self, key: str, sub: Submission, art: Artifacts | None = None, grace=2.0):
        """The stages' `execute`, memoised by `key`; each run in its own folder."""
        if key not in self._runs:
            from .submission.execute import execute

            art = art or self.artifacts
            folder = self.work / key
            self._runs[key] = execute(sub, art, self.device, folder, grace=grace)
        return self._runs[key]

    def seeds_run(self) -> tuple[Outcome, Outcome]:
        """Seeds 0 and 1 with the submission's defaults."""
        execution = self._execute("seeds", self.plan(seeds=2))
        return execution.outcomes[0], execution.outcomes[1]

    def repeat_run(self) -> Outcome:
        """Seed 0 again, in a run of its own."""
        return self._execute("repeat", self.plan(seeds=1)).outcomes[0]

    def natural_seconds(self) -> float:
        """The unbounded `unlearn()` call's time: the quicker seed's (the first call of a
        process pays one-off costs)."""
        times = [o.seconds for o in self.seeds_run() if o.status == "ok" and o.seconds]
        if not times:
            raise _Unavailable(f"no seed ran to completion ({SEE_RUN})")
        return min(times)

    def budget_run(self) -> tuple[Outcome, float, float, int]:
        """Seed 0 under a tiny budget, its sets tiled `k` times so that the unbounded call
        would take about `BUDGET_WORK` seconds; returns (outcome, budget, the expected
        unbounded seconds, k)."""
        natural = self.natural_seconds()
        art = self.artifacts
        k = 1
        # Tiling would break a training stage's row positions; those run untiled.
        if not self.facts.has_training_stage:
            rows = len(art.split.forget_idx) + len(art.split.retain_idx)
            most = max(1, MAX_TILED // rows)
            k = max(1, min(math.ceil(BUDGET_WORK / max(natural, 1e-3)), most))
        if k > 1:
            split = replace(
                art.split,
                forget_idx=art.split.forget_idx.repeat(k),
                retain_idx=art.split.retain_idx.repeat(k),
            )
            art = replace(art, split=split)
        expected = natural * k
        budget = round(min(max(expected / 8, BUDGET_MIN), BUDGET_MAX), 3)
        sub = self.plan(seeds=1, budget=str(budget))
        outcome = self._execute("budget", sub, art, grace=BUDGET_GRACE).outcomes[0]
        return outcome, budget, expected, k

    def stage_weights(self, key: str, params: dict[str, Any]) -> dict[str, Any] | str:
        """The training stage's weights for seed 0 with `params`, run now in a private
        cache (never the shared one); or why it failed."""
        import torch

        from .cache import Cache
        from .isolation.executor import SerialExecutor
        from .submission.training_stage import TrainedMethod, run_training_stage

        if key not in self._runs:
            sub = self.plan(seeds=1, params=params)
            folder = self.work / key
            result = run_training_stage(
                sub,
                self.artifacts,
                self.device,
                range(1),
                SerialExecutor(),
                folder / "jobs",
                cache=Cache(folder / "cache"),
            )[0]
            if isinstance(result, TrainedMethod):
                self._runs[key] = torch.load(result.weights, weights_only=True)
            else:
                self._runs[key] = f"{result.status}: {result.error}"
        return self._runs[key]


# ---------------------------------------------------------------------------- helpers


def _failure(o: Outcome) -> str:
    where = _last_frame(o.traceback)
    return f"seed {o.seed} ended {o.status}: {_first_line(o.error)}" + (
        f" ({where})" if where else ""
    )


def _last_frame(tb: str | None) -> str:
    """'file.py, line N' of the innermost frame of a traceback, to point at the bug."""
    lines = [ln.strip() for ln in (tb or "").splitlines() if ln.strip().startswith('File "')]
    if not lines:
        return ""
    file, _, rest = lines[-1][len('File "') :].partition('"')
    return f"{Path(file).name}{rest.split(',')[1] if ',' in rest else ''}".replace("  ", " ")


def _weights(o: Outcome) -> dict[str, Any]:
    import torch

    return torch.load(o.weights, weights_only=True)


def _difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest absolute difference between two state dicts (infinite when their
    shapes differ)."""
    if set(a) != set(b) or any(a[k].shape != b[k].shape for k in a):
        return math.inf
    worst = 0.0
    for name, x in a.items():
        y = b[name]
        if x.is_floating_point():
            worst = max(worst, float((x.double() - y.double()).abs().max()) if x.numel() else 0.0)
        elif not bool((x == y).all()):
            worst = math.inf
    return worst


def _candidates(current: Any, choices: Sequence[str]) -> list[Any]:
    """Other values to try for a field whose value is `current` (JSON types); `choices`
    are the field's allowed strings, if it has them."""
    if isinstance(current, bool):
        return [not current]
    if isinstance(current, int):
        return [current + 1, current * 2, current - 1]
    if isinstance(current, float):
        return [current * 2, current / 2, current + 0.1, current - 0.1]
    return [v for v in choices if v != current]


def _alternatives(s: Subject, params: dict[str, Any]) -> dict[str, Any]:
    """Another valid value for each field of `params` that has one, validated by the
    method's own fields in a sandboxed worker (`describe`'s candidates: one worker for
    all of them)."""
    from .submission.plan import describe_method

    choices = s.facts.choices
    tried = [(n, v) for n in params for v in _candidates(params[n], choices.get(n, ()))]
    info = describe_method(s.entry, candidates=tuple({**params, n: v} for n, v in tried))
    found: dict[str, Any] = {}
    for (name, value), problem in zip(tried, info.candidate_problems, strict=True):
        if problem is None and value != params[name]:
            found.setdefault(name, value)
    return found


# ---------------------------------------------------------------------------- the checks

CheckFunction = Callable[[Subject], tuple[Status, str]]
CHECKS: list[CheckFunction] = []


def _check(fn: CheckFunction) -> CheckFunction:
    CHECKS.append(fn)
    return fn


@_check
def check_registered(s: Subject) -> tuple[Status, str]:
    """The name is registered in the `mu_bench.methods` entry-point group."""
    e = s.entry
    return "pass", f"{e.value} from {e.distribution} {e.version}"


# The static checks need the method's class: they run in a sandboxed check worker
# (`contract.static_report`), never here. Each is registered in CHECKS as a harness-side
# function of the same name that reads its (status, detail) from the worker's report.

# The check worker's clock: importing the plugin (torch is preloaded) and the checks.
STATIC_LIMITS: dict[str, float] = dict(budget=60.0, grace=2.0, startup=120.0)


def _static(name: str) -> CheckFunction:
    def check(s: Subject) -> tuple[Status, str]:
        return s.static(name)

    check.__name__ = check.__qualname__ = name
    check.__doc__ = STATIC_CHECKS[name].__doc__
    return _check(check)


check_imports = _static("check_imports")
check_is_method_with_docstring = _static("check_is_method_with_docstring")
check_declarations = _static("check_declarations")
check_implements_unlearn = _static("check_implements_unlearn")
check_defaults_validate = _static("check_defaults_validate")
check_presets_validate = _static("check_presets_validate")
assert [f.__name__ for f in CHECKS[1:]] == list(STATIC_CHECKS)


@_check
def check_unlearn_returns_a_valid_model(s: Subject) -> tuple[Status, str]:
    """`unlearn()` on seeds 0 and 1 ends `ok`: it returned the scenario's architecture
    (or its `output_spec`) with finite weights, within the scenario's budget."""
    outcomes = s.seeds_run()
    failed = [o for o in outcomes if o.status != "ok"]
    if failed:
        return "fail", "; ".join(_failure(o) for o in failed)
    times = ", ".join(f"{o.seconds:.3f} s" for o in outcomes if o.seconds is not None)
    return "pass", f"seeds 0 and 1 ok ({times}) on {s.scenario.name}"


@_check
def check_reads_only_declared_sets(s: Subject) -> tuple[Status, str]:
    """The method touches only the sets its `reads` declares (a set it did not declare is
    never handed to its worker: touching one raises `DataAccessError`)."""
    reads = s.facts.reads
    outcomes = [*s.seeds_run(), s.repeat_run()]
    touched = [o for o in outcomes if "DataAccessError" in (o.error or "") + (o.traceback or "")]
    if touched:
        return "fail", f"{_first_line(touched[0].error)}"
    if any(o.status != "ok" for o in outcomes):
        raise _Unavailable(f"a seed failed for another reason ({SEE_RUN})")
    return "pass", f"declares reads = {reads!r} and touched nothing else"


@_check
def check_same_seed_same_model(s: Subject) -> tuple[Status, str]:
    """Seed 0 run twice gives the same model: use `task.generator` (or the global RNGs,
    which the worker seeds) for all randomness."""
    first, _ = s.seeds_run()
    again = s.repeat_run()
    if first.status != "ok" or again.status != "ok":
        raise _Unavailable(f"seed 0 did not end ok ({SEE_RUN})")
    diff = _difference(_weights(first), _weights(again))
    if diff == 0:
        return "pass", "identical weights"
    if diff <= 1e-6:
        return "pass", f"weights equal to within {diff:.1e} (floating-point order)"
    return "fail", (
        f"seed 0 twice gave weights differing by up to {diff:.3g}: draw randomness from "
        "task.generator or the global RNGs the worker seeds, not from unseeded sources"
    )


@_check
def check_seeds_give_different_models(s: Subject) -> tuple[Status, str]:
    """Seeds 0 and 1 give different models: forget quality compares the spread of a
    method's models with the gold models', and a method that ignores its seed is a point
    mass (forget quality 0). Declaring `ignores_seed = True` makes that a warning."""
    ignores_seed = s.facts.ignores_seed
    a, b = s.seeds_run()
    if a.status != "ok" or b.status != "ok":
        raise _Unavailable(f"a seed did not end ok ({SEE_RUN})")
    diff = _difference(_weights(a), _weights(b))
    if diff > 1e-6:
        if ignores_seed:
            return "warn", (
                f"declares ignores_seed, yet seeds 0 and 1 differ (by up to {diff:.3g}) here"
            )
        return "pass", f"seeds 0 and 1 differ by up to {diff:.3g}"
    if ignores_seed:
        return "warn", (
            "seeds 0 and 1 give the same model, as it declares (ignores_seed): its "
            "forget quality will be 0, a point mass against the gold models' spread"
        )
    return "fail", (
        "seeds 0 and 1 give the same model: use task.generator (shuffles, noise, "
        "initialisation) so that each seed is its own draw, as a retrained model is; a "
        "method that means to ignore its seed declares `ignores_seed = True`"
    )


@_check
def check_stops_near_budget(s: Subject) -> tuple[Status, str]:
    """Given a tiny budget on enough work, `unlearn()` returns by itself soon after it
    (check `task.budget.expired` inside its loops), rather than being killed or running
    on. (A call that ends past its budget is recorded `timeout` on the leaderboard: a
    method should stop at the budget, and within a step of it.)"""
    outcome, budget, expected, k = s.budget_run()
    slack = max(SLACK_MIN, budget)
    tiled = f", its sets tiled {k}x" if k > 1 else ""
    if outcome.seconds is None:
        if outcome.status == "timeout":
            return "fail", (
                f"did not stop under a {budget:g} s budget{tiled}: killed after "
                f"{budget + BUDGET_GRACE:g} s; check task.budget.expired inside its loops"
            )
        return "fail", _failure(outcome)
    if outcome.status not in ("ok", "timeout"):
        return "fail", _failure(outcome)
    took = outcome.seconds
    # Judged before the time it took: a call this short ends near its budget (or not)
    # by the clock's noise, whether or not it checks the budget.
    if expected < budget + 2 * slack:
        return "skip", (
            f"the whole call takes about {expected:.3f} s here{tiled}: too little work to "
            "show that it stops at a budget"
        )
    if took > budget + slack:
        return "fail", (
            f"returned after {took:.2f} s under a {budget:g} s budget{tiled} (about "
            f"{expected:.2f} s unbounded): check task.budget.expired inside its loops"
        )
    return "pass", (
        f"returned after {took:.3f} s under a {budget:g} s budget (about {expected:.2f} s "
        f"unbounded{tiled})"
    )


def check_training_stage_follows_train_fields(s: Subject) -> tuple[Status, str]:
    """The training stage (`train`) depends on the fields `train_fields` names and on no
    other: a cached stage is reused whenever those fields are equal."""
    facts = s.facts
    if not facts.has_training_stage:
        return "skip", "no training stage (the method does not override train)"
    defaults = s.plan(seeds=1).params
    inside = list(defaults) if facts.train_fields is None else list(facts.train_fields)
    alternatives = _alternatives(s, defaults)
    outside = [n for n in defaults if n not in inside]
    base = s.stage_weights("stage-base", defaults)
    if isinstance(base, str):
        return "fail", f"train() {base}"
    notes = []
    for name in outside:
        value = alternatives.get(name)
        if value is None:
            continue
        other = s.stage_weights(f"stage-{name}", {**defaults, name: value})
        if isinstance(other, str):
            return "fail", f"train() with {name}={value}: {other}"
        if _difference(base, other) > 1e-6:
            again = s.stage_weights("stage-again", defaults)
            if isinstance(again, str) or _difference(base, again) > 1e-6:
                return "fail", "train() gives different models for the same seed and fields"
            return "fail", (
                f"train() changes with {name}, which train_fields leaves out: a cached "
                f"stage would be reused for another {name}; add it to train_fields"
            )
        notes.append(f"unchanged by {name}")
        break
    for name in inside:
        value = alternatives.get(name)
        if value is None:
            continue
        other = s.stage_weights(f"stage-{name}", {**defaults, name: value})
        if isinstance(other, str):
            return "fail", f"train() with {name}={value}: {other}"
        if _difference(base, other) <= 1e-6:
            return "warn", (
                f"train() is the same with {name}={value}: train_fields lists it, so the "
                "stage is retrained needlessly when only it changes"
            )
        notes.append(f"changed by {name}")
        break
    return "pass", "; ".join(notes) or "no field to vary"


# ---------------------------------------------------------------------------- running them


@dataclass(frozen=True)
class Check:
    """One named check of one method, ready to call: returns its `CheckResult`, raises
    `CheckFailed` on a fail and warns `CheckWarning` on a warning (pytest shows both)."""

    subject: Subject
    function: CheckFunction

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def id(self) -> str:
        return f"{self.subject.name}-{self.name}"

    def run(self) -> CheckResult:
        """The result, never raising for the method's faults."""
        try:
            status, detail = self.function(self.subject)
        except _Unavailable as exc:
            first = self.function in (check_registered, check_imports)
            status, detail = ("fail" if first else "skip"), str(exc)
        except MuBenchError as exc:
            status, detail = "fail", str(exc)
        return CheckResult(self.name, status, detail)

    def __call__(self) -> CheckResult:
        result = self.run()
        if result.status == "fail":
            raise CheckFailed(f"{self.id}: {result.detail}")
        if result.status == "warn":
            warnings.warn(f"{self.id}: {result.detail}", CheckWarning, stacklevel=2)
        return result


def yield_checks(method: str, **options: Any) -> Iterator[Check]:
    """The checks of `method` (a registered name), sharing one `Subject` (`options` are
    its keyword arguments: scenario, params, use_preset, device). Nothing runs until a
    check is called, but for the last: whether the method has a training stage (and so
    gets `check_training_stage_follows_train_fields`) is asked of the check worker once
    the others have been taken."""
    subject = Subject(method, **options)
    yield from (Check(subject, fn) for fn in CHECKS)
    try:
        staged = subject.facts.has_training_stage
    except _Unavailable:
        staged = False
    if staged:
        yield Check(subject, check_training_stage_follows_train_fields)


def check_method(method: str, **options: Any) -> list[CheckResult]:
    """Every check of `method`, run in order; never raises for the method's faults."""
    checks = list(yield_checks(method, **options))
    try:
        return [c.run() for c in checks]
    finally:
        checks[0].subject.close()


def parametrize_with_checks(methods: Sequence[str], **options: Any):
    """A pytest decorator that runs every check of each method as its own test, with ids
    like `my-method-check_same_seed_same_model`:

        @parametrize_with_checks(["my-method"])
        def test_mu_bench_contract(check):
            check()
    """
    import pytest

    # Collecting starts no worker: the stage check is always listed (a skip without one).
    checks = []
    for m in methods:
        subject = Subject(m, **options)
        functions = [*CHECKS, check_training_stage_follows_train_fields]
        checks += [Check(subject, fn) for fn in functions]
    return pytest.mark.parametrize("check", checks, ids=[c.id for c in checks])


__all__ = [
    "CHECKS",
    "CHECK_SCENARIO",
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckWarning",
    "Subject",
    "check_method",
    "parametrize_with_checks",
    "yield_checks",
]
