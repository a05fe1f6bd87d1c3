"""A test plugin for executors: `probe-sleep` reports, from inside its worker, when its
call started (`started_at`, seconds since the epoch), torch's thread count (`threads`)
and its process id (`pid`), sleeps `seconds`, and returns the model unchanged."""

import os
import time
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask


class Sleep(Method):
    reads: ClassVar[Reads] = "none"

    seconds: float = Field(0.0, ge=0)

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        task.report_metric("started_at", time.time())
        task.report_metric("threads", torch.get_num_threads())
        task.report_metric("pid", os.getpid())
        time.sleep(self.seconds)
        return task.model
