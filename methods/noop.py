"""`noop`: the original model, untouched: the lower anchor every method must beat."""

from typing import ClassVar

from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask


class NoOp(Method):
    """Return the original model unchanged (no forgetting: the lower anchor)."""

    reads: ClassVar[Reads] = "none"
    ignores_seed: ClassVar[bool] = True  # every seed returns the original: forget quality 0

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        return task.model
