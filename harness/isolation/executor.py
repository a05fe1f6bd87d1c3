"""The executor seam: a batch of jobs in, one outcome per job out, as each one ends.

Every executor runs a job as `runner.run_job` does (its own sandboxed worker process,
files in and out) and yields its `Outcome` whenever the job ends, in any order, with
the job's outputs in a folder on the submitting machine (`Outcome.folder`). Callers
match outcomes to jobs by `Outcome.key` and must not assume the order they were given.
A job is self-contained (`protocol.Job`: its request, the paths of its input files and
its limits), so an executor may run it in another process or on another machine.

`SerialExecutor` runs jobs one after another in this process's runner, each in
`work/<key>/`; `pool.LocalPool` runs N at once on this machine (`--jobs N`);
`dask_executor.DaskExecutor` sends them to a Dask cluster (`--executor dask://HOST:PORT`).
`make_executor` picks one from the command line and the environment. Every executor sets
each worker's torch threads the same way (`pool.threads_per_job`), so which one ran a
job changes where and how fast, not what it computed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from ..errors import UsageError
from .protocol import Job, Outcome

EXECUTOR_ENV = "MU_BENCH_EXECUTOR"  # the default `--executor`
JOBS_ENV = "MU_BENCH_JOBS"  # the default `--jobs`
VALID_EXECUTORS = "local (this machine, --jobs at once) or dask://HOST:PORT (a Dask scheduler)"


class Executor(Protocol):
    remote: bool  # jobs run on other machines: inputs travel, outputs come back
    capacity: int  # jobs it runs at once

    def run(self, jobs: Sequence[Job], work: Path) -> Iterator[Outcome]:
        """Run `jobs`, each in a folder under `work`; yield each outcome as its job ends."""
        ...


class SerialExecutor:
    """One job at a time, in order, on this machine."""

    remote = False
    capacity = 1

    def run(self, jobs: Sequence[Job], work: Path) -> Iterator[Outcome]:
        from .pool import with_threads
        from .runner import run_job

        for job in jobs:
            yield run_job(with_threads(job), work / job.key)


def _jobs_from(text: str, where: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise UsageError(f"{where} {text!r}: give a whole number of jobs, at least 1")
    return jobs


def check_executor(url: str | None, jobs: int | None) -> tuple[str, int | None]:
    """(executor URL, jobs) that `--executor URL` and `--jobs N` ask for, the environment's
    defaults applied (jobs None: the device's default); raises UsageError on bad input.
    Needs neither torch nor a connection, so the CLI checks before starting anything."""
    url = url or os.environ.get(EXECUTOR_ENV) or "local"
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs {jobs}: give at least 1")
    if url.startswith("dask://"):
        if jobs is not None:
            raise UsageError(
                "--jobs sets the local pool; a Dask cluster runs as many jobs at once as its "
                "workers have threads (dask worker --nthreads)"
            )
        return url, None
    if url != "local":
        raise UsageError(f"--executor {url!r} is not valid. Valid: {VALID_EXECUTORS}")
    if jobs is None and os.environ.get(JOBS_ENV):
        jobs = _jobs_from(os.environ[JOBS_ENV], f"${JOBS_ENV}")
    return url, jobs


def make_executor(url: str | None, jobs: int | None, device: str) -> Executor:
    """The executor `--executor URL` and `--jobs N` ask for (`$MU_BENCH_EXECUTOR` and
    `$MU_BENCH_JOBS` when not given): a Dask cluster, or a local pool of N (default: as
    many as the machine runs at once for `device`). Raises UsageError on bad input."""
    url, jobs = check_executor(url, jobs)
    if url.startswith("dask://"):
        from .dask_executor import DaskExecutor

        return DaskExecutor.connect(url)
    from .pool import LocalPool, default_jobs

    return LocalPool(jobs if jobs is not None else default_jobs(device))


def for_prepare(executor: Executor | None) -> Executor | None:
    """The executor `prepare` should train models through: a remote one, or a local one
    that runs several at once; None (train in process, no worker start-up) otherwise."""
    if executor is not None and (executor.remote or executor.capacity > 1):
        return executor
    return None


def close(executor: Executor | None) -> None:
    """Let go of what an executor holds (a Dask client's connections)."""
    closer = getattr(executor, "close", None)
    if closer is not None:
        closer()
