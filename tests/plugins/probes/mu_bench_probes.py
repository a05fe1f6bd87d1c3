"""Test plugins that look, from inside their worker, at what the harness handed them.

`probe-forget-only` and `probe-retain-only` read their declared set, then check that the
other set exists nowhere they can reach: not in their task.json, not as a file beside
their inputs, not through the task (which must raise DataAccessError). Any finding is
raised, so the seed ends `error` with the finding as its message.
`probe-initial-model` returns `task.initial_model()` as its result."""

import json
from pathlib import Path
from typing import ClassVar

from torch import nn

from mu_bench.method import Method, Reads
from mu_bench.task import DataAccessError, UnlearnTask


class _OneSet(Method):
    reads: ClassVar[Reads] = "both"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        other = {"forget": "retain", "retain": "forget"}[self.reads]
        assert len(getattr(task, self.reads)) > 0
        spec = json.loads(Path("task.json").read_text())  # the worker runs in its seed dir
        found = []
        if spec["inputs"][other] is not None:
            found.append(f"task.json names a {other} file")
        if (Path(spec["inputs"]["model"]).parent / f"{other}.pt").exists():
            found.append(f"{other}.pt lies beside the inputs")
        try:
            getattr(task, other)
            found.append(f"task.{other} was handed over")
        except DataAccessError:
            pass
        if found:
            raise AssertionError("; ".join(found))
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
