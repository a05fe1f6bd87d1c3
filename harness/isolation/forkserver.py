"""`python -m mu_bench.isolation.forkserver`: a warm, pristine interpreter that forks workers.

Started once per harness process (on a Linux CPU run), it imports the worker module and
the harness modules a worker needs (torch, torch._dynamo, the task, method, model and
training code: no plugin code, no tensor work, no CUDA) and then serves one request at
a time over its stdin/stdout, one JSON line each:

    server  -> harness  {"ready": true}          once, when its imports are done
    harness -> server   {"folder": ..., "env": {...}, "sys_path": [...]}
    server  -> harness  {"pid": PID}             right after the fork
    server  -> harness  {"pid": PID, "code": C}  when the worker ends (C < 0: signal)

The child makes itself a session leader, points fds 0/1/2 at /dev/null and the job's
log files, takes the environment and sys.path the harness sent, and runs the worker.
The server exits when its stdin closes, i.e. when the harness is gone.
"""

from __future__ import annotations

import json
import os
import sys


def _child(request: dict) -> None:
    from .protocol import STDERR, STDOUT
    from .worker import run_in_child

    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for fd, name in ((1, STDOUT), (2, STDERR)):
        path = os.path.join(request["folder"], name)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    run_in_child(request["folder"], request["env"], request["sys_path"])


def serve() -> None:
    from . import worker

    worker.preload()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")  # the harness hands it jobs from now on
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                _child(request)
            finally:
                os._exit(70)  # run_in_child never returns; this is a last resort
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        out.write(json.dumps({"pid": pid, "code": code}) + "\n")
        out.flush()


if __name__ == "__main__":
    serve()
