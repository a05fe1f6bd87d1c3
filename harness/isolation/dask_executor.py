"""`DaskExecutor`: jobs on a Dask cluster (`--executor dask://HOST:PORT`).

Each job becomes one Dask task, `run_remote`, which runs it on a Dask worker with the
same `runner.run_job` and worker process as on this machine (the fork server, the
sandbox, the budget and the statuses are the runner's), in a scratch folder under the
Dask machine's work root (`MU_BENCH_WORK`), and sends back the outcome and the job's outputs
(`weights.pt`, a model's `outputs.pt`, a training stage's `state/` folder, the logs'
tails). They are written under `work/<key>/` here, so callers see an `Outcome` exactly
as from a local executor. Only this process writes the store and the cache: a task
never touches either.

**Inputs** are addressed by content (SHA-256). When every Dask worker sees this
machine's cache root (`MU_BENCH_CACHE` on a shared file system; checked at the start of
each batch by a probe file), a job names its inputs by their path in the cache, after
this process has copied any that live elsewhere into cache entries `inputs/<sha256>`;
otherwise it carries them: each distinct file (or a folder, as a tar archive) is
scattered once to every worker and shared by all the jobs that read it. Either way the
Dask worker checks every input against its hash before the job runs, so two machines
never disagree about a scenario.

**Faults.** A Dask worker that dies mid-job (its machine, or its process) loses the
attempt, never the job: the scheduler reruns the task elsewhere, and a task that has
already been started twice (a counter per job on the scheduler, a Dask `Variable`)
returns `crashed` instead of running a third time; a task the scheduler gives up on
(`KilledWorker`, with a stricter `allowed-failures`), or cancels because a scattered
input's only copy died with a worker (scattered again first), is resubmitted until it
has had its two attempts. Each job yields exactly one outcome.

Threads: each job gets the Dask machine's `threads_per_job` (as locally: one per job on
a CPU, or `$MU_BENCH_THREADS` on the worker); start each `dask worker` with as many
threads as its machine should run jobs at once (`--nthreads`), one worker per GPU on
CUDA machines. Plugins must be installed on the workers as on this machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import socket
import tarfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import UsageError
from .protocol import (
    LOGITS,
    OUTPUT,
    STATE,
    STDERR,
    STDOUT,
    WEIGHTS,
    Job,
    Outcome,
)

log = logging.getLogger("mu_bench")

SCHEME = "dask://"
ATTEMPTS = 2  # a job runs at most twice: once, and once more elsewhere if its worker died
RESCATTERS = 2  # resubmissions beyond ATTEMPTS for tasks cancelled before they started
LOG_TAIL = 64 * 1024  # bytes of each log brought back
MAX_OUTPUT_BYTES = 4 << 30  # a job's outputs past this are not brought back (invalid)
PROBE_KIND = "probes"
INPUTS_KIND = "inputs"


# --------------------------------------------------------------------------- content hashes

_HASHES: dict[tuple[str, int, int], str] = {}
_HASHES_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) within this process."""
    from ..cache import sha256_file

    st = path.stat()
    memo = (str(path), st.st_size, st.st_mtime_ns)
    with _HASHES_LOCK:
        if memo in _HASHES:
            return _HASHES[memo]
    digest = sha256_file(path)
    with _HASHES_LOCK:
        _HASHES[memo] = digest
    return digest


def tree_sha256(folder: Path) -> str:
    """SHA-256 of a folder: every file's relative path and content hash, sorted."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(folder).as_posix()}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


def _tar(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buf.getvalue()


def _untar(data: bytes, target: Path) -> None:
    """Unpack an archive made by `_tar` into `target`; members that would land outside
    it, links and devices are refused (the state folder is a plugin's)."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(target, filter="data")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Input:
    """A job's input as it travels: its content hash, whether it is a folder, and either
    its path in the shared cache or its bytes (a folder as a tar archive). Sent as a
    plain dict (`to_task`): Dask replaces futures inside dicts, not inside objects."""

    sha256: str
    is_dir: bool
    cache_path: str | None = None
    data: Any = None  # bytes, or a Dask future of them until the task runs

    def to_task(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "is_dir": self.is_dir,
            "cache_path": self.cache_path,
            "data": self.data,
        }


class InputMismatch(RuntimeError):
    """An input on a Dask worker is not the content the job was sent with."""


def _stage(inp: Input, staging: Path) -> Path:
    """The input as a local path on the Dask worker, checked against its hash."""
    from ..paths import cache_root

    if inp.cache_path is not None:
        path = cache_root() / inp.cache_path
        if not path.exists():
            raise InputMismatch(f"input {inp.cache_path} is not in this worker's cache {path}")
        got = tree_sha256(path) if inp.is_dir else file_sha256(path)
        if got != inp.sha256:
            raise InputMismatch(f"input {path} has SHA-256 {got}, the job expects {inp.sha256}")
        return path
    target = staging / inp.sha256
    if target.exists():  # staged for an earlier job on this worker (checked then)
        return target
    tmp = staging / f".{inp.sha256}.{uuid.uuid4().hex}"
    data = inp.data
    if inp.is_dir:
        _untar(data, tmp)
        got = tree_sha256(tmp)
    else:
        got = hashlib.sha256(data).hexdigest()
        tmp.write_bytes(data)
    if got != inp.sha256:
        shutil.rmtree(tmp, ignore_errors=True) if inp.is_dir else tmp.unlink(missing_ok=True)
        raise InputMismatch(f"an input arrived with SHA-256 {got}, the job expects {inp.sha256}")
    with contextlib.suppress(OSError):  # another thread staged it meanwhile: keep theirs
        os.replace(tmp, target)
    if tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True) if inp.is_dir else tmp.unlink(missing_ok=True)
    return target


# --------------------------------------------------------------------------- the Dask task


def _attempt_counter(name: str):
    from distributed import Variable, get_client

    return Variable(name, client=get_client())


def _started(client, counter: str) -> int:
    """How many times the job's task has started (its attempt counter)."""
    from distributed import Variable

    try:
        return int(Variable(counter, client=client).get(timeout=30))
    except Exception:  # the scheduler cannot say: count it as used up
        return ATTEMPTS


def run_remote(job_doc: dict[str, Any], inputs: dict[str, dict], counter: str) -> dict:
    """The Dask task: run one job with `run_job` on this Dask worker; its outcome and
    output files. Returns a crashed outcome instead of running when the job has already
    been started `ATTEMPTS` times (its earlier workers died)."""
    from distributed import get_worker

    from ..paths import work_root
    from .pool import with_threads
    from .runner import run_job

    worker = get_worker()
    attempts = _attempt_counter(counter)
    started = int(attempts.get(timeout=30))
    attempts.set(started + 1)
    job = Job.from_json(job_doc)
    if started >= ATTEMPTS:
        return {"lost": started, "worker": str(worker.name)}
    # Under this machine's work root, not the Dask worker's local directory: Dask puts
    # that directory on `sys.path`, so every job may read it (`policy.reads`), and one
    # job must never read another's folder or inputs.
    base = work_root() / "dask" / Path(worker.local_directory).name
    staging = base / "inputs"
    staging.mkdir(parents=True, exist_ok=True)
    files = {name: _stage(Input(**inp), staging) for name, inp in inputs.items()}
    _warm(job.request.device, worker)
    folder = base / "jobs" / uuid.uuid4().hex
    try:
        outcome = run_job(with_threads(replace(job, files=files)), folder)
        return {**_pack(folder, outcome), "worker": str(worker.name)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _pack(folder: Path, outcome: Outcome) -> dict[str, Any]:
    from .untrusted import UntrustedOutput, check_tree, read_output

    files: dict[str, bytes] = {}
    dirs: dict[str, bytes] = {}
    refused: list[str] = []
    for name in (WEIGHTS, LOGITS):  # the worker's files: untrusted, as on this machine
        try:
            files[f"{OUTPUT}/{name}"] = read_output(folder / OUTPUT / name, MAX_OUTPUT_BYTES)
        except FileNotFoundError:
            pass
        except (UntrustedOutput, OSError) as exc:
            refused.append(f"{name}: {exc}")
    state = folder / OUTPUT / STATE
    if state.is_dir() and not state.is_symlink():
        problem = check_tree(state)
        if problem:
            refused.append(f"{STATE}: {problem}")
        else:
            dirs[f"{OUTPUT}/{STATE}"] = _tar(state)
    if refused and outcome.status == "ok":
        outcome = outcome.with_status("invalid", "outputs refused: " + "; ".join(refused))
    for name in (STDOUT, STDERR):
        path = folder / name
        if path.is_file():
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - LOG_TAIL))
                files[name] = fh.read()
    size = sum(map(len, files.values())) + sum(map(len, dirs.values()))
    if size > MAX_OUTPUT_BYTES:
        error = f"the job's outputs are {size} bytes, over the {MAX_OUTPUT_BYTES} that come back"
        outcome = outcome.with_status("invalid", error)
        files, dirs = {}, {}
    return {"outcome": outcome.to_json(), "files": files, "dirs": dirs}


def _warm(device: str, dask_worker=None) -> None:
    """Allow as many fork servers as this Dask worker runs tasks at once; start one.
    (`Client.run` passes the worker as `dask_worker`.)"""
    from .launch import prestart

    prestart(device, dask_worker.state.nthreads)


def _sees(relative: str, token: str) -> bool:
    """On a Dask worker: whether its cache root holds the probe file with `token`."""
    from ..paths import cache_root

    try:
        return (cache_root() / relative).read_text() == token
    except OSError:
        return False


# --------------------------------------------------------------------------- the executor


def parse_address(url: str) -> str:
    """`dask://HOST:PORT` -> the scheduler's `tcp://HOST:PORT`; UsageError otherwise."""
    rest = url[len(SCHEME) :] if url.startswith(SCHEME) else ""
    parsed = urlparse(f"tcp://{rest}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or port is None or parsed.path not in ("", "/"):
        raise UsageError(
            f"--executor {url!r} is not valid: give dask://HOST:PORT, the address of a "
            "Dask scheduler (`dask scheduler --port PORT`)"
        )
    return f"tcp://{parsed.hostname}:{port}"


class DaskExecutor:
    """Jobs as tasks on the Dask cluster whose scheduler is at `address`."""

    remote = True

    def __init__(self, client, url: str):
        self.client = client
        self.url = url

    @classmethod
    def connect(cls, url: str, timeout: float = 30) -> DaskExecutor:
        from distributed import Client

        address = parse_address(url)
        host, port = address[len("tcp://") :].rsplit(":", 1)
        try:  # a quick, clear answer where nothing listens (Dask would retry until timeout)
            socket.create_connection((host, int(port)), timeout=timeout).close()
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UsageError(
                f"--executor {url}: no Dask scheduler answers at {address} ({exc}). Start one "
                "with `dask scheduler` and workers with `dask worker ADDRESS`"
            ) from None
        return cls(client, url)

    @property
    def capacity(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def close(self) -> None:
        self.client.close()

    def _shared_cache(self) -> bool:
        """Whether every worker sees this machine's cache root (a probe file's contents)."""
        from ..paths import cache_root

        root = cache_root()
        token = uuid.uuid4().hex
        relative = f"{PROBE_KIND}/{token}"
        probe = root / relative
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(token)
        try:
            answers = self.client.run(_sees, relative, token)
        finally:
            probe.unlink(missing_ok=True)
        return bool(answers) and all(answers.values())

    def run(self, jobs: Sequence[Job], work: Path) -> Iterator[Outcome]:
        from distributed import KilledWorker, Variable, as_completed
        from distributed.client import FutureCancelledError

        if not jobs:
            return
        self.client.wait_for_workers(1)
        self.client.run(_warm, jobs[0].request.device)
        carrier = _Carrier(self.client, self._shared_cache())
        batch = uuid.uuid4().hex[:12]
        counters = {job.key: f"mu-bench-attempts-{batch}-{job.key}" for job in jobs}
        by_future = {}
        submitted = dict.fromkeys(counters, 0)

        def submit(job: Job):
            submitted[job.key] += 1
            future = self.client.submit(
                run_remote,
                job.to_json(),
                {name: carrier.input(path).to_task() for name, path in job.files.items()},
                counters[job.key],
                key=f"mu-bench-{batch}-{job.key}-{submitted[job.key]}",
                pure=False,
            )
            by_future[future] = job
            return future

        for job in jobs:
            Variable(counters[job.key], client=self.client).set(0)
        pending = as_completed([submit(job) for job in jobs], loop=self.client.loop)
        try:
            for future in pending:
                job = by_future.pop(future)
                try:
                    payload = future.result()
                except (KilledWorker, FutureCancelledError) as exc:
                    # Judged by the attempts that started (the counter), not by our own
                    # submissions: a task whose scattered input died with the worker
                    # holding its only copy is cancelled, whether or not it had started.
                    started = _started(self.client, counters[job.key])
                    if started < ATTEMPTS and submitted[job.key] < ATTEMPTS + RESCATTERS:
                        again = carrier.refresh()
                        log.info(
                            "%s: %s after %d attempt(s), %d input(s) scattered again; "
                            "resubmitting it",
                            job.key,
                            type(exc).__name__,
                            started,
                            again,
                        )
                        pending.add(submit(job))
                        continue
                    payload = {"lost": started, "worker": "?"}
                finally:
                    future.release()
                yield self._outcome(job, payload, work / job.key)
        finally:
            for future in list(by_future):
                future.cancel()
            for name in counters.values():
                with contextlib.suppress(Exception):
                    Variable(name, client=self.client).delete()
            carrier.release()

    @staticmethod
    def _outcome(job: Job, payload: dict[str, Any], folder: Path) -> Outcome:
        """The job's outcome with its outputs written under `folder` on this machine."""
        shutil.rmtree(folder, ignore_errors=True)
        (folder / OUTPUT).mkdir(parents=True)
        if "lost" in payload:
            started = int(payload["lost"])
            error = (
                f"the Dask worker running it died, on each of its {started} attempts"
                if started >= ATTEMPTS
                else f"the Dask cluster kept losing it or its inputs ({started} attempts began)"
            )
            return Outcome(
                key=job.key, seed=job.request.seed, status="crashed", folder=folder, error=error
            )
        for name, data in payload["files"].items():
            (folder / name).write_bytes(data)
        for name, data in payload["dirs"].items():
            _untar(data, folder / name)
        return replace(Outcome.from_json(payload["outcome"]), folder=folder)


class _Carrier:
    """How a batch's inputs travel: as paths into the shared cache (copied into it first
    when they live elsewhere), or scattered to every worker once per distinct content."""

    def __init__(self, client, shared: bool):
        self.client = client
        self.shared = shared
        self._by_sha: dict[str, Any] = {}
        self._by_path: dict[str, Input] = {}

    def input(self, source: Path) -> Input:
        key = str(source)
        if key not in self._by_path:
            self._by_path[key] = self._make(source)
        return self._by_path[key]

    def _make(self, source: Path) -> Input:
        from ..cache import Cache
        from ..paths import cache_root

        is_dir = source.is_dir()
        sha = tree_sha256(source) if is_dir else file_sha256(source)
        if self.shared:
            root = cache_root()
            if not source.resolve().is_relative_to(root.resolve()):
                copy = shutil.copytree if is_dir else shutil.copyfile

                def build(tmp: Path) -> dict[str, Any]:
                    copy(source, tmp / "data")
                    return {"sha256": sha}

                source = Cache(root).get_or_build(INPUTS_KIND, sha, build).file("data")
            relative = source.resolve().relative_to(root.resolve()).as_posix()
            return Input(sha, is_dir, cache_path=relative)
        if sha not in self._by_sha:
            data = _tar(source) if is_dir else source.read_bytes()
            self._by_sha[sha] = self.client.scatter(data, broadcast=True, hash=False)
        return Input(sha, is_dir, data=self._by_sha[sha])

    def refresh(self) -> int:
        """Forget every scattered input whose data the cluster has lost, so that the next
        `input` scatters it again; how many. Dask's active memory manager keeps a single
        copy of data no waiting task needs, broadcast or not, so a worker that dies can
        take an input's only copy with it (its jobs are then cancelled)."""
        lost = {sha for sha, future in self._by_sha.items() if future.status != "finished"}
        for sha in lost:
            with contextlib.suppress(Exception):
                self._by_sha.pop(sha).release()
        self._by_path = {k: v for k, v in self._by_path.items() if v.sha256 not in lost}
        return len(lost)

    def release(self) -> None:
        for future in self._by_sha.values():
            with contextlib.suppress(Exception):
                future.release()
        self._by_sha.clear()
