"""Test plugin: records the process that imports it, in its class docstring (which
`check_is_method_with_docstring` reports) and, where it may write there, in the file
named by $MU_BENCH_PROBE_MARKER. Otherwise `noop`: seed-blind, and says so."""

import contextlib
import os
from typing import ClassVar

from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask

# A sandboxed worker may not write there.
with contextlib.suppress(OSError, KeyError), open(os.environ["MU_BENCH_PROBE_MARKER"], "a") as f:
    f.write(f"{os.getpid()}\n")


class Marked(Method):
    reads: ClassVar[Reads] = "none"
    ignores_seed: ClassVar[bool] = True

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        return task.model


Marked.__doc__ = f"Returns the model unchanged; imported in process {os.getpid()}."
