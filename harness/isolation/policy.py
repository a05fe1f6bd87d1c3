"""Which sandbox a job runs under, and what its worker may reach (the harness's side of
`sandbox`).

`mechanism()` is the strongest sandbox this machine offers (`sandbox.detect`: Landlock
and bubblewrap, or one of them, or "none"; `$MU_BENCH_SANDBOX` forces a weaker one).
`job_policy` is one job's `sandbox.Policy`: read (and execute) the interpreter, the
system libraries and every import root on `sys.path` (plugins included) less any that
is, holds or lies in a forbidden folder; read only the job's `request.json` and
`inputs/`; write only `output/`, the private `tmp/` and, for a method with a training
stage, its private copy of the stage's folder (`inputs/state/`); the job's resource caps
(`protocol.Limits`). Forbidden: mu-bench's home (the default store), the cache, the
data root, the work root, the user's home (import roots inside it stay readable), and
any folder the CLI adds with `forbid` (a store given by `--tracking-uri`). Everything
else is out of reach because Landlock grants nothing else, and, under bubblewrap,
because it is not even mounted.

`server_view` is what a fork server under bubblewrap must see: the same reads and the
folders the jobs live in (`job_root`: the work root, or the folder above a job's batch
folder when a caller lays jobs out elsewhere).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ..paths import cache_root, data_root, home, work_root
from . import sandbox
from .protocol import INPUTS, OUTPUT, REQUEST, STATE, TEMP, Limits

_EXTRA_FORBIDDEN: list[str] = []


def forbid(path: str | Path) -> None:
    """Keep `path` (a store's folder, say) out of every worker's reach."""
    text = str(Path(path).absolute())
    if text not in _EXTRA_FORBIDDEN:
        _EXTRA_FORBIDDEN.append(text)


def mechanism() -> str:
    """The sandbox jobs run under here: one of `sandbox.MECHANISMS`. Raises ValueError
    for an unknown `$MU_BENCH_SANDBOX`."""
    return sandbox.detect()


REQUIRE_VAR = "MU_BENCH_REQUIRE_SANDBOX"  # "1": refuse to run unsandboxed (a user's default)


def env_requires_sandbox() -> bool:
    return os.environ.get(REQUIRE_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def forbidden() -> tuple[str, ...]:
    # The user's home is never granted either (`sandbox.python_reads`), though import
    # roots inside it (a venv, pyenv's interpreter) are.
    folders = [home(), cache_root(), data_root(), work_root()]
    return tuple(dict.fromkeys([str(Path(f).absolute()) for f in folders] + _EXTRA_FORBIDDEN))


@lru_cache(maxsize=16)
def _python_reads(sys_path: tuple[str, ...], banned: tuple[str, ...]) -> tuple[str, ...]:
    return sandbox.SYSTEM_READ + sandbox.python_reads(banned)


def reads() -> tuple[str, ...]:
    """The read grants of every worker of this process (system and Python)."""
    import sys

    return _python_reads(tuple(sys.path), forbidden())


def job_policy(folder: Path, limits: Limits, device: str) -> sandbox.Policy:
    """The policy of the job laid out in `folder` (see the module docstring)."""
    cuda = device.startswith("cuda")
    write = [folder / OUTPUT, folder / TEMP]
    if (folder / INPUTS / STATE).is_dir():  # a private copy: the method's to change
        write.append(folder / INPUTS / STATE)
    return sandbox.Policy(
        read=reads() + (sandbox.GPU_READ if cuda else ()),
        inputs=(str(folder / REQUEST), str(folder / INPUTS)),
        write=tuple(str(p) for p in write),
        devices=sandbox.gpu_devices() if cuda else (),
        memory_bytes=limits.memory_bytes,
        file_bytes=limits.file_bytes,
        log_bytes=limits.log_bytes,
        max_processes=limits.max_processes,
    )


def job_root(folder: Path) -> Path:
    """The folder a fork server under bubblewrap binds so that it sees the job `folder`:
    the work root, or else the folder above the job's batch folder."""
    folder = folder.absolute()
    root = work_root().absolute()
    if folder == root or root in folder.parents:
        return root
    return folder.parent.parent if len(folder.parents) > 2 else folder.parent
