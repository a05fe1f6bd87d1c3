"""`LocalPool`: N jobs at once on this machine, each in its own worker process.

N threads each take the next job and run it with `runner.run_job`, exactly as the serial
executor would (same worker, same fork server kind, same statuses); outcomes are yielded
as jobs end, in any order. Forked workers come from a pool of warm fork servers, one per
job running at once (`launch.ServerPool`).

Threads: every worker gets the same number of torch threads whatever N is
(`threads_per_job`: the machine's cores over the default number of jobs, so one on a
CPU), unless the request or `$MU_BENCH_THREADS` says otherwise. torch's reductions
depend on the thread count (a digits MLP's weights differ by about 1e-7 between one and
two threads), so tying threads to N would make `--jobs 2` and `--jobs 1` disagree;
this way they give identical results and differ only in wall time.

Devices: on CUDA each running job gets its own GPU (`cuda:0` .. `cuda:N-1`, N at most
the number of GPUs), so a request for plain `cuda` is placed on the slot's GPU.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from .protocol import THREADS_ENV, Job, Outcome


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_jobs(device: str) -> int:
    """How many jobs the machine runs at once for `device`: one per GPU on CUDA (one
    for a named `cuda:N`), one per usable core on a CPU."""
    if device.startswith("cuda"):
        return 1 if ":" in device else max(1, gpu_count())
    return usable_cores()


def threads_per_job(device: str) -> int:
    """torch threads per worker: `$MU_BENCH_THREADS`, else the cores over the default
    number of jobs (independent of `--jobs`, so results do not depend on it)."""
    env = os.environ.get(THREADS_ENV, "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, usable_cores() // default_jobs(device))


def with_threads(job: Job, threads: int | None = None) -> Job:
    """`job` with its worker's torch threads set, unless its request already sets them."""
    if job.request.threads is not None:
        return job
    n = threads or threads_per_job(job.request.device)
    return replace(job, request=replace(job.request, threads=n))


class LocalPool:
    """Up to `jobs` jobs at once on this machine."""

    remote = False

    def __init__(self, jobs: int, *, threads: int | None = None):
        if jobs < 1:
            raise ValueError(f"a pool runs at least one job at once, not {jobs}")
        self.jobs = jobs
        self.threads = threads

    @property
    def capacity(self) -> int:
        return self.jobs

    def _placed(self, job: Job, slot: int) -> Job:
        """The job with its thread count and, on CUDA, the slot's GPU."""
        job = with_threads(job, self.threads)
        if job.request.device == "cuda" and self.jobs > 1:
            device = f"cuda:{slot % max(1, gpu_count())}"
            job = replace(job, request=replace(job.request, device=device))
        return job

    def run(self, jobs: Sequence[Job], work: Path) -> Iterator[Outcome]:
        from .launch import prestart
        from .runner import run_job

        if not jobs:
            return
        n = min(self.jobs, len(jobs))
        prestart(jobs[0].request.device, n)
        slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(n):
            slots.put(slot)

        def one(job: Job) -> Outcome:
            slot = slots.get()
            try:
                return run_job(self._placed(job, slot), work / job.key)
            finally:
                slots.put(slot)

        with ThreadPoolExecutor(n, thread_name_prefix="mu-bench-job") as pool:
            futures: list[Future[Outcome]] = [pool.submit(one, job) for job in jobs]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:  # the caller stopped early: drop what has not started
                for future in futures:
                    future.cancel()
