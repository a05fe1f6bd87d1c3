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
def main() -> None:
    folder = Path(sys.argv[1])
    sandbox = json.loads((folder / SANDBOX_FILE).read_text())
    start_fd = os.environ.get("MU_BENCH_START_FD")
    os.chdir(folder / "output")
    from .sandbox import confine_or_exit

    confine_or_exit(sandbox, keep_fds=() if start_fd is None else (int(start_fd),))
    from .worker import run_and_exit  # torch, then the plugin: confined from here on

    run_and_exit(folder)


if __name__ == "__main__":
    main()
