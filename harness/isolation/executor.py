"""The executor seam: a batch of jobs in, one outcome per job out, as each one ends.

Every executor runs a job as `runner.run_job` does (its own sandboxed worker process,
files in and out) and yields its `Outcome` whenever the job ends, in any order, with
the job's outputs in a folder on the submitting machine (`Outcome.folder`). Callers
match outcomes to jobs by `Outcome.key` and must not assume the order they were given.
A job is self-contained (`protocol.Job`: its request, the paths of its input files and
its limits), so an executor may run it in another process or on another machine.

`SerialExecutor` (the default) runs jobs one after another in this process's runner,
each in `work/<key>/`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from .protocol import Job, Outcome


class Executor(Protocol):
    def run(self, jobs: Sequence[Job], work: Path) -> Iterator[Outcome]:
        """Run `jobs`, each in a folder under `work`; yield each outcome as its job ends."""
        ...


class SerialExecutor:
    """One job at a time, in order, on this machine."""

    def run(self, jobs: Sequence[Job], work: Path) -> Iterator[Outcome]:
        from .runner import run_job

        for job in jobs:
            yield run_job(job, work / job.key)
