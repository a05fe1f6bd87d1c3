"""A misbehaving plugin for the harness's fault tests: seed i commits fault FAULTS[i];
seeds past the list behave, so tests can show one failing seed never stops the others."""

import os
import signal
import subprocess
import sys
import time
from typing import ClassVar

import torch
from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask


def raises(task):
    raise RuntimeError("deliberate failure in unlearn")


def exits(task):
    sys.exit(3)


def hangs(task):
    time.sleep(3600)


def ignores_term(task):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.1)


def nan_weights(task):
    with torch.no_grad():
        for p in task.model.parameters():
            p.fill_(float("nan"))
    return task.model


def other_architecture(task):
    return nn.Linear(3, 3)


def not_a_module(task):
    return 42


def kills_itself(task):
    os.kill(os.getpid(), signal.SIGKILL)


def peeks_at_retain(task):
    return task.retain  # declared reads = "forget"


def overruns_quietly(task):
    time.sleep(task.budget.seconds + 0.5)  # finishes, but inside the kill grace
    return task.model


def leaves_child(task):
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(3600)"], start_new_session=True
    )
    with open(os.environ["FAULT_PID_FILE"], "w") as fh:
        fh.write(str(child.pid))
    return task.model


FAULTS = [
    raises,
    exits,
    hangs,
    ignores_term,
    nan_weights,
    other_architecture,
    not_a_module,
    kills_itself,
    peeks_at_retain,
    overruns_quietly,
    leaves_child,
]


class Chaos(Method):
    """Misbehaves in a different way on each seed (test plugin)."""

    reads: ClassVar[Reads] = "forget"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        if task.seed < len(FAULTS):
            return FAULTS[task.seed](task)
        return task.model
