"""Run one job in an isolated, sandboxed worker process under a hard time budget.

After automlbenchmark: a fresh process in its own process group (see `launch`), files in
and out, an escalating kill, a status for every outcome. `run_job` lays out the job's
folder (`request.json`, the input files under `inputs/`, an empty `output/` and a
private `tmp/`), starts the worker under this machine's sandbox (`policy.mechanism`:
Landlock, bubblewrap, both or none; the job's policy in `policy.job_policy`) and
watches it. Inputs are hard links into the artifact cache only where Landlock makes
them read-only to the worker; otherwise they are copies, so no worker can write into
the cache (whose loads re-hash every file anyway).

The clock is the runner's own (`time.monotonic`), started when the worker hands over to
plugin code (an event on a pipe that only harness code in the worker holds, see
`launch`) and stopped at its exit: `Outcome.seconds` for a job that returned a model,
and the budget. Plugin code, its import included, runs only inside that window, so a
worker can neither shrink its cost nor report its own. At budget + grace the whole group
gets SIGTERM, then SIGKILL after `term_grace`; a worker whose logs pass their cap is
killed at once and its logs cut, with a marker; finally every process still carrying
the job's token in its environment (a detached grandchild that left the group, say) is
killed. Output goes to log files, not pipes, so a stray child holding them open cannot
hang the harness.

Statuses: ok, timeout, error (exception; message and traceback kept), crashed (killed
by a signal, a resource limit: "memory limit 4 GiB", "file size limit 1 GiB", "log limit
16 MiB", "process limit 1 ...", or exited without a result) and invalid (a malformed,
oversized or linked result, a changed input, or a call that returned something that is
not a module; the harness's weight check adds more).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

from ..cache import link_or_copy
from . import sandbox as sb
from .launch import ServerDied, start_worker, sweep, worker_env
from .policy import job_policy, mechanism
from .protocol import (
    INPUTS,
    OUTPUT,
    REQUEST,
    RESULT,
    STDERR,
    STDOUT,
    TEMP,
    Job,
    Outcome,
    ProtocolError,
    WorkerResult,
)
from .untrusted import UntrustedOutput, read_output

MAX_RESULT_BYTES = 1 << 20  # a result.json larger than this is malformed


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as fh:
        try:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read(limit).decode(errors="replace")
        except OSError:
            return ""


def _kill_group(pid: int | None, sig: int) -> None:
    """Signal the worker's process group (it leads its own session), and the worker itself
    in case it has not yet become a session leader; None: it had ended before its pid was
    known (what it left is swept by its token)."""
    if pid is None:
        return
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, sig)


def lay_out(job: Job, folder: Path, link: bool = True) -> dict[Path, tuple[int, int]]:
    """The job's folder: its request, its inputs (files linked when `link`, else copied;
    folders copied: a folder is the method's to change), an empty output folder and a
    private temporary folder. Returns (size, mtime) of each linked input, to check that
    the worker left the cache's files alone."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / OUTPUT).mkdir(parents=True)
    (folder / TEMP).mkdir()
    (folder / INPUTS).mkdir()
    linked = {}
    for name, source in job.files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        elif link:
            link_or_copy(source, target)
            st = target.stat()
            linked[target] = (st.st_size, st.st_mtime_ns)
        else:
            shutil.copyfile(source, target)
    (folder / REQUEST).write_text(json.dumps(job.request.to_json(), indent=1))
    return linked


def read_result(folder: Path) -> WorkerResult | str | None:
    """The worker's result; a string saying why it is malformed; None when there is none."""
    try:
        data = read_output(folder / OUTPUT / RESULT, MAX_RESULT_BYTES)
        return WorkerResult.from_json(json.loads(data))
    except FileNotFoundError:
        return None
    except UntrustedOutput as exc:
        return f"result.json refused: {exc}"
    except (OSError, ValueError, ProtocolError) as exc:
        return f"malformed result.json: {exc}"


def _changed_inputs(linked: dict[Path, tuple[int, int]]) -> list[str]:
    changed = []
    for path, before in linked.items():
        try:
            st = path.stat()
            now = (st.st_size, st.st_mtime_ns)
        except OSError:
            now = None
        if now != before:
            changed.append(path.name)
    return changed


def run_job(job: Job, folder: Path) -> Outcome:
    """Run `job` in `folder` on this machine, in this machine's sandbox, and classify how
    it ended."""
    limits = job.limits
    seed = getattr(job.request, "seed", 0)  # an inspection has none
    try:
        mech = mechanism()
    except ValueError as exc:  # a bad $MU_BENCH_SANDBOX
        return Outcome(job.key, seed, "crashed", folder, error=str(exc))
    if limits.require_sandbox and mech == "none":
        error = "a sandbox is required and this machine offers none (Landlock or bubblewrap)"
        return Outcome(job.key, seed, "crashed", folder, error=error, sandbox=mech)
    linked = lay_out(job, folder, link="landlock" in mech)
    policy = job_policy(folder, limits, job.request.device)
    sandbox = {"policy": policy.to_dict(), "mechanism": mech}
    token = uuid.uuid4().hex
    env = {**worker_env(token), **policy.environment(str(folder / TEMP))}
    logs = [folder / STDOUT, folder / STDERR]
    try:
        proc = start_worker(folder, env, job.request.device, sandbox, job.request.trains)
    except ServerDied as exc:
        return Outcome(job.key, seed, "crashed", folder, error=str(exc), sandbox=mech)
    killed_for: str | None = None
    while (code := proc.wait(limits.poll)) is None:
        now, started = time.monotonic(), proc.started_at
        if sb.log_breach(logs, policy):
            killed_for = "log"
        if started is None:
            limit = proc.spawned_at + limits.startup
        else:
            limit = started + limits.budget + limits.grace
        if killed_for is None and now >= limit:
            killed_for = "budget" if started else "startup"
        if killed_for is not None:
            _kill_group(proc.pid, signal.SIGTERM if killed_for != "log" else signal.SIGKILL)
            if proc.wait(limits.term_grace) is None:
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            break
    code = proc.poll()
    started, end = proc.started_at, proc.ended_at or time.monotonic()
    _kill_group(proc.pid, signal.SIGKILL)  # anything left in the group
    leftovers = sweep(proc, token)
    log_over = killed_for == "log" or sb.log_breach(logs, policy)
    if log_over:
        for log in logs:
            sb.cap_log(log, policy.log_bytes)
    window = end - started if started is not None else None
    common = dict(
        key=job.key,
        seed=seed,
        folder=folder,
        wall_seconds=window,
        startup_seconds=started - proc.spawned_at if started is not None else None,
        stderr_tail=_tail(folder / STDERR),
        leftovers_killed=leftovers,
        sandbox=mech,
    )
    result = read_result(folder)
    changed = _changed_inputs(linked)
    if changed:
        error = f"the worker changed its input files {changed} (they are the cache's)"
        return Outcome(status="invalid", error=error, **common)
    evidence = ""
    if isinstance(result, WorkerResult):
        evidence = f"{result.error or ''}\n{result.traceback or ''}"
    reason = sb.classify(code, f"{evidence}\n{common['stderr_tail']}", policy, log_over=log_over)
    if log_over or (reason and not (isinstance(result, WorkerResult) and result.status == "ok")):
        tb = result.traceback if isinstance(result, WorkerResult) else None
        return Outcome(status="crashed", error=reason, traceback=tb, **common)
    if isinstance(result, str):
        return Outcome(status="invalid", error=result, **common)
    if result is not None:
        if result.status == "ok" and window is not None and window > limits.budget:
            return Outcome(
                status="timeout",
                seconds=window,
                error=f"the call took {window:.2f} s, over the {limits.budget:g} s budget",
                reported=result.metrics,  # what it says it did (retrain: epochs done)
                **common,
            )
        if result.status == "ok" and window is None:
            error = "the worker returned a result without handing over to plugin code"
            return Outcome(status="invalid", error=error, **common)
        return Outcome(
            status=result.status,
            seconds=window if result.status == "ok" else None,
            error=result.error,
            traceback=result.traceback,
            reported=result.metrics,
            **common,
        )
    if killed_for == "budget":
        error = f"killed after the {limits.budget:g} s budget (+{limits.grace:g} s grace)"
        return Outcome(status="timeout", error=error, **common)
    if killed_for == "startup":
        error = f"worker did not reach the timed call within {limits.startup:g} s"
        return Outcome(status="timeout", error=error, **common)
    if code == sb.SANDBOX_FAILED and started is None:
        error = "the sandbox could not be applied: " + common["stderr_tail"].strip()[-500:]
        return Outcome(status="crashed", error=error, **common)
    if getattr(proc, "server_died", False):
        reason = "the fork server died while the worker ran"
    elif code is not None and code < 0:
        reason = f"worker killed by signal {signal.Signals(-code).name}"
    else:
        reason = f"worker exited with code {code} without a result"
    return Outcome(status="crashed", error=reason, **common)
