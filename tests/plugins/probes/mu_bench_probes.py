"""Test plugins that look, from inside their worker, at what the harness handed them.

`probe-forget-only` and `probe-retain-only` read their declared set, then check that the
other set and the validation set exist nowhere they can reach: not in their
request.json, not as a file beside their inputs, not through the task (which must
raise DataAccessError). `probe-validation` reads the validation set alone, checks the
same of the forget and retain sets, and reports the validation set's size and sums
(`task.report_metric`) so that a test can tell which rows it got. Any finding is
raised, so the seed ends `error` with the finding as its message.
`probe-initial-model` returns `task.initial_model()` as its result. `probe-worker-start`
reports what its worker inherited from the fork server."""

import json
from pathlib import Path
from typing import ClassVar

from torch import nn

from mu_bench.api import DataAccessError, Method, Reads, UnlearnTask


def _out_of_reach(task: UnlearnTask, *sets: str) -> None:
    """Raise if any of `sets` can be reached: named in request.json, a file beside the
    inputs, or handed over through the task."""
    job = Path("..")  # the worker runs in its job folder's `output/`
    spec = json.loads((job / "request.json").read_text())
    found = []
    for other in sets:
        if other in spec["inputs"]:
            found.append(f"request.json names a {other} file")
        if (job / spec["inputs"]["model"]).parent.joinpath(f"{other}.pt").exists():
            found.append(f"{other}.pt lies beside the inputs")
        try:
            getattr(task, other)
            found.append(f"task.{other} was handed over")
        except DataAccessError:
            pass
    if found:
        raise AssertionError("; ".join(found))


class _OneSet(Method):
    reads: ClassVar[Reads] = "both"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        other = {"forget": "retain", "retain": "forget"}[self.reads]
        assert len(getattr(task, self.reads)) > 0
        _out_of_reach(task, other, "validation")
        return task.model


class ForgetOnly(_OneSet):
    """Reads the forget set only and checks the retain set is out of reach (test plugin)."""

    reads: ClassVar[Reads] = "forget"


class RetainOnly(_OneSet):
    """Reads the retain set only and checks the forget set is out of reach (test plugin)."""

    reads: ClassVar[Reads] = "retain"


class InitialModel(Method):
    """Returns the original model's initial weights (test plugin)."""

    reads: ClassVar[Reads] = "none"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        return task.initial_model()


class ValidationOnly(Method):
    """Reads the validation set only; reports its size and sums (test plugin)."""

    reads: ClassVar[Reads] = "validation"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        _out_of_reach(task, "forget", "retain")
        val = task.validation
        task.report_metric("validation_rows", len(val))
        task.report_metric("validation_x_sum", float(val.x.double().sum()))
        task.report_metric("validation_y_sum", float(val.y.double().sum()))
        return task.model


class WorkerStart(Method):
    """Reports how its worker started (test plugin): whether torch._dynamo came with the
    process, imported and frozen by the fork server (its module's dict is not among the
    objects this process's collector tracks) rather than by this worker; whether the
    collector is on; how many objects it inherited frozen; whether the public API it
    imports (`mu_bench.api`) came with the process too, off its clock."""

    reads: ClassVar[Reads] = "none"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        import gc
        import sys

        compiler = sys.modules.get("torch._dynamo")
        tracked = {id(o) for o in gc.get_objects()}
        inherited = compiler is not None and id(vars(compiler)) not in tracked
        task.report_metric("compiler_inherited", float(inherited))
        api = sys.modules.get("mu_bench.api")
        task.report_metric("api_inherited", float(api is not None and id(vars(api)) not in tracked))
        task.report_metric("gc_enabled", float(gc.isenabled()))
        task.report_metric("frozen_objects", float(gc.get_freeze_count()))
        return task.model
