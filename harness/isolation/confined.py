"""`python -m mu_bench.isolation.confined JOB_FOLDER`: a spawned worker, confined first.

The spawn path (CUDA runs, or `MU_BENCH_WORKER_START=spawn`) starts a fresh interpreter,
under bubblewrap when the machine has it. This entry point reads the runner's
`JOB_FOLDER/sandbox.json` (`{"policy", "mechanism"}`), confines the process while it is
still single-threaded (Landlock binds the calling thread and the threads it starts
afterwards; torch starts threads on import), and only then imports the worker, torch
and, through the request, the plugin. It imports nothing heavy itself.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SANDBOX_FILE = "sandbox.json"


def _find_library_without_processes() -> None:
    """Answer `ctypes.util.find_library` from one `ldconfig -p` listing taken now.

    Importing torch asks it for libdl (through cuda.pathfinder), and the stdlib answers
    by running `ldconfig -p` (then gcc, then ld): a process start, which the confined
    worker is killed for. The fork path never sees this (its server imports torch before
    any confinement); here the listing is read before confining, and a name it lacks is
    reported missing instead of asking gcc."""
    import ctypes.util
    import re
    import subprocess

    try:
        listing = subprocess.run(
            ["/sbin/ldconfig", "-p"],
            capture_output=True,
            env={"LC_ALL": "C", "LANG": "C"},
            timeout=10,
        ).stdout.decode(errors="replace")
    except (OSError, subprocess.SubprocessError):
        listing = ""

    abi = "libc6,x86-64" if os.uname().machine == "x86_64" else "libc6"  # as the stdlib

    def find_library(name: str) -> str | None:
        found = re.search(rf"\s(lib{re.escape(name)}\.[^\s]+)\s+\({re.escape(abi)}", listing)
        return found.group(1) if found else None

    ctypes.util.find_library = find_library


def main() -> None:
    folder = Path(sys.argv[1])
    sandbox = json.loads((folder / SANDBOX_FILE).read_text())
    start_fd = os.environ.get("MU_BENCH_START_FD")
    os.chdir(folder / "output")
    from .sandbox import confine_or_exit

    _find_library_without_processes()
    sys.path[:] = sandbox.get("sys_path", sys.path)
    confine_or_exit(sandbox, keep_fds=() if start_fd is None else (int(start_fd),))
    import gc

    gc.disable()  # as the fork server's imports (`forkserver.serve`): a third of their CPU
    from .worker import preload_compiler, run_and_exit  # torch: confined from here on

    preload_compiler()
    gc.freeze()
    gc.enable()
    run_and_exit(folder)


if __name__ == "__main__":
    main()
