"""`python -m mu_bench.isolation.forkserver`: a warm, pristine interpreter that forks workers.

Started once per harness process (on a Linux CPU run), under bubblewrap when the machine
has it (`launch.ForkServer`: its own user, PID, network and mount namespaces), it
imports the worker module and the harness modules a worker needs (torch,
torch._dynamo, the task, method, model and training code: no plugin code, no tensor
work, no CUDA) and then serves one request at a time over its stdin/stdout, one JSON
line each:

    server  -> harness  {"ready": PID}           once, after the imports (PID: its own)
    harness -> server   {"folder": ..., "env": {...}, "sys_path": [...], "sandbox": {...}}
    server  -> harness  {"pid": PID}             right after the fork
    server  -> harness  {"started": true}        when the worker hands over to plugin code
    server  -> harness  {"pid": PID, "code": C}  when the worker ends (C < 0: signal)

Pids are as this server sees them (in a PID namespace under bubblewrap, the harness
translates them). The child makes itself a session leader, points fds 0/1/2 at
/dev/null and the job's log files, takes the environment and sys.path the harness sent,
confines itself (`sandbox`: the runner's policy and mechanism; see `confined`) and runs
the worker. It signals the hand-over on a pipe only it and this server hold, so the
runner's clock starts on an event a plugin cannot fake or delay. The server exits when
its stdin closes, i.e. when the harness is gone.
"""

from __future__ import annotations

import json
import os
import sys


def _child(request: dict, start_fd: int) -> None:
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
    run_in_child(
        request["folder"], request["env"], request["sys_path"], request.get("sandbox"), start_fd
    )


def _say(out, **message) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve() -> None:
    from . import worker

    worker.preload()
    out = sys.stdout
    _say(out, ready=os.getpid())
    for line in sys.stdin:
        request = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_end)
                _child(request, write_end)
            finally:
                os._exit(70)  # run_in_child never returns; this is a last resort
        os.close(write_end)
        _say(out, pid=pid)
        # One byte when the worker hands over; end of file when it dies before that.
        if os.read(read_end, 1):
            _say(out, pid=pid, started=True)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _say(out, pid=pid, code=code)


if __name__ == "__main__":
    serve()
