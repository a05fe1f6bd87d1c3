"""The plugin contract's static checks: the ones that need the method's class (imports,
docstring, declarations, `unlearn`, defaults, presets), as `mu-bench check` runs them.

They run only in a sandboxed check worker (`isolation.worker`, for a `CheckRequest`),
never in the harness: the worker loads this module, hands over, imports the plugin and
calls `static_report`, whose `CheckReport` (each check's status and detail, and the
declarations the run checks need) it writes as its answer. `mu_bench.testing` registers
a harness-side check of the same name for each, which reads that answer. Milliseconds
per method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from .errors import MuBenchError, UsageError

if TYPE_CHECKING:
    from .isolation.protocol import CheckReport

Status = Literal["pass", "warn", "fail", "skip"]
TEMPLATE_MARK = "ONE LINE"  # `mu-bench new`'s placeholder text


class Unavailable(Exception):
    """What a check needs could not be had: the check is skipped, with this reason."""


def first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


@dataclass(frozen=True)
class Loaded:
    """The plugin's class, as the check worker imported it."""

    name: str
    value: str  # the entry point, "package.module:Class"
    cls: Any

    def method_class(self) -> Any:
        from .method import Method

        if not (isinstance(self.cls, type) and issubclass(self.cls, Method)):
            raise Unavailable(f"{self.value} is not a Method subclass")
        return self.cls


StaticLogic = Callable[[Loaded], tuple[Status, str]]
STATIC_CHECKS: dict[str, StaticLogic] = {}


def _register(logic: StaticLogic) -> StaticLogic:
    STATIC_CHECKS[logic.__name__] = logic
    return logic


def static_report(name: str, value: str, load: Callable[[], Any]) -> CheckReport:
    """Run every static check on the class `load()` imports (in the check worker, which
    calls this: the plugin's import and every line of plugin code run there); a failed
    import raises. A check that raises is a failure naming the exception."""
    import inspect  # noqa: F401  # what the checks use, loaded before plugin code
    from typing import get_origin

    from pydantic import ValidationError  # noqa: F401

    from .budget import parse_budget  # noqa: F401
    from .data.registry import DATASETS  # noqa: F401
    from .isolation.protocol import CheckReport
    from .method import Method, has_training_stage

    loaded = Loaded(name, value, load())
    results = []
    for check, logic in STATIC_CHECKS.items():
        try:
            status, detail = logic(loaded)
        except Unavailable as exc:
            status, detail = ("fail" if check == "check_imports" else "skip"), str(exc)
        except MuBenchError as exc:
            status, detail = "fail", str(exc)
        except Exception as exc:
            status, detail = "fail", f"the check raised {type(exc).__name__}: {exc}"
        results.append((check, status, str(detail)))
    cls = loaded.cls
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        return CheckReport(tuple(results))
    try:
        names = cls.train_fields
        choices = {}
        for field, info in cls.model_fields.items():
            args = get_args(info.annotation) if get_origin(info.annotation) is Literal else ()
            strings = tuple(a for a in args if isinstance(a, str))
            if strings:
                choices[field] = strings
        return CheckReport(
            tuple(results),
            is_method=True,
            reads=str(cls.reads),
            scope=cls.scope if cls.scope in ("any", "class") else "any",
            ignores_seed=cls.ignores_seed is True,
            has_training_stage=has_training_stage(cls),
            train_fields=None if names is None else tuple(str(n) for n in names),
            choices=choices,
        )
    except Exception:  # declarations too broken to read: the runs are skipped
        return CheckReport(tuple(results))


@_register
def check_imports(c: Loaded) -> tuple[Status, str]:
    """The entry point imports and names a class."""
    cls = c.cls
    if not isinstance(cls, type):
        return "fail", f"{c.value} is {type(cls).__name__}, not a class"
    return "pass", f"{cls.__module__}.{cls.__qualname__}"


@_register
def check_is_method_with_docstring(c: Loaded) -> tuple[Status, str]:
    """A `mu_bench.api.Method` subclass whose docstring's first line says what it does
    (`mu-bench methods` shows that line)."""
    import inspect

    from .method import Method

    cls = c.cls
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        return "fail", f"{c.value} is not a Method subclass: subclass mu_bench.api.Method"
    doc = inspect.getdoc(cls) if cls.__doc__ else None
    if not doc or not doc.strip():
        return "fail", "the class has no docstring: its first line is the summary `methods` shows"
    module = inspect.getdoc(inspect.getmodule(cls)) or ""
    if TEMPLATE_MARK in doc or TEMPLATE_MARK in module:
        return "warn", (
            "the docstrings are still `mu-bench new`'s template: say what the method does, "
            "its paper, the source it follows and each deviation"
        )
    return "pass", first_line(doc)


@_register
def check_declarations(c: Loaded) -> tuple[Status, str]:
    """`reads`, `scope`, `ignores_seed`, `default_budget`, `train_fields` and `presets`
    are well formed."""
    from .budget import parse_budget
    from .method import Reads, Scope

    cls = c.method_class()
    problems = []
    if cls.reads not in get_args(Reads):
        problems.append(f"reads = {cls.reads!r}: give one of {', '.join(get_args(Reads))}")
    if cls.scope not in get_args(Scope):
        problems.append(f"scope = {cls.scope!r}: give one of {', '.join(get_args(Scope))}")
    if not isinstance(cls.ignores_seed, bool):
        problems.append(f"ignores_seed = {cls.ignores_seed!r}: give True or False")
    if cls.default_budget is not None:
        try:
            parse_budget(str(cls.default_budget))
        except UsageError:
            problems.append(
                f"default_budget = {cls.default_budget!r}: give seconds ('30') or a share of "
                "the retrain time ('150%')"
            )
    if cls.train_fields is not None:
        unknown = sorted(set(cls.train_fields) - set(cls.model_fields))
        if unknown:
            problems.append(f"train_fields names unknown fields {unknown}")
    if not isinstance(cls.presets, dict) or not all(
        isinstance(v, dict) for v in cls.presets.values()
    ):
        problems.append("presets must be a dict of {setting: {field: value}}")
    if problems:
        return "fail", "; ".join(problems)
    return "pass", f"reads {cls.reads}, scope {cls.scope}" + (
        ", ignores its seed" if cls.ignores_seed else ""
    )


@_register
def check_implements_unlearn(c: Loaded) -> tuple[Status, str]:
    """The class overrides `unlearn(self, task)`."""
    from .method import Method, has_training_stage

    cls = c.method_class()
    if getattr(cls, "unlearn", Method.unlearn) is Method.unlearn:
        return "fail", "unlearn(self, task) is not implemented"
    return "pass", "unlearn" + (" and train" if has_training_stage(cls) else "")


@_register
def check_defaults_validate(c: Loaded) -> tuple[Status, str]:
    """The field defaults validate, and the validated values survive the JSON trip a
    worker's request takes."""
    from pydantic import ValidationError

    cls = c.method_class()
    try:
        method = cls()
    except ValidationError as exc:
        return "fail", f"the defaults do not validate: {exc.errors()[0]['msg']}"
    dumped = method.model_dump(mode="json")
    if cls.model_validate(dumped) != method:
        return "fail", f"the fields do not survive a JSON round trip: {dumped}"
    return "pass", ", ".join(f"{k}={v}" for k, v in dumped.items()) or "(no fields)"


@_register
def check_presets_validate(c: Loaded) -> tuple[Status, str]:
    """Every preset validates, and every preset key names a dataset (`digits`) or a
    dataset and forget rule (`cifar10-class`), so that some scenario applies it."""
    from .data.registry import DATASETS
    from .method import instantiate

    cls = c.method_class()
    if not cls.presets:
        return "pass", "no presets"
    bad, unknown = [], []
    for key, values in cls.presets.items():
        try:
            instantiate(cls, c.name, dict(values))
        except UsageError as exc:
            bad.append(f"{key}: {exc}")
        dataset, _, rule = key.partition("-") if key not in DATASETS else (key, "", "")
        for name in DATASETS:
            if key.startswith(f"{name}-") and key[len(name) + 1 :] in ("random", "class"):
                dataset, rule = name, key[len(name) + 1 :]
        if dataset not in DATASETS or rule not in ("", "random", "class"):
            unknown.append(key)
    if bad:
        return "fail", "; ".join(bad)
    if unknown:
        return "warn", (
            f"no scenario applies presets {unknown}: keys are a dataset "
            f"({', '.join(sorted(DATASETS))}) or '<dataset>-random' / '<dataset>-class'"
        )
    return "pass", ", ".join(cls.presets)
