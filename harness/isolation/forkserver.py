"""`python -m mu_bench.isolation.forkserver`: a warm, pristine interpreter that forks workers.

Started once per harness process (on a Linux CPU run), under bubblewrap when the machine
has it (`launch.ForkServer`: its own user, PID, network and mount namespaces), it
imports the worker module and the harness modules a worker needs (torch,
torch._dynamo, the task, method, model and training code: no plugin code, no tensor
work, no CUDA) and then serves one request at a time over its stdin/stdout, one JSON
line each:

    server  -> harness  {"ready": PID}           once, after the imports (PID: its own)
    harness -> server   {"folder": ..., "env": {...}, "sys_path": [...], "sandbox": {...},
                         "trains": true|false}
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

torch._dynamo (0.8 s of CPU with the collector off; every `torch.optim` optimizer needs
it) is imported last: before the first job that trains, or, when the first job trains
nothing (`mu-bench submit`'s description of the method), on a thread while that job
runs, so the server answers the description that much sooner. The thread is joined
before the next fork: no fork ever happens while it imports.
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
    import gc
    import threading

    # The imports make over a million objects, which the collector would otherwise walk
    # again and again while they are made: 4.4-5.0 s of CPU with it on, 3.3-3.4 s off.
    # Frozen once made, so that no forked worker's collection walks them either.
    gc.disable()
    from . import worker

    worker.preload()
    gc.freeze()
    gc.enable()
    out = sys.stdout
    _say(out, ready=os.getpid())
    compiler = False  # torch._dynamo imported (or being imported by `loading`)
    loading: threading.Thread | None = None
    for line in sys.stdin:
        request = json.loads(line)
        if loading is not None:  # never fork while another thread imports
            loading.join()
            loading = None
        if not compiler and request.get("trains", True):
            worker.preload_compiler()
            compiler = True
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
        if not compiler:  # a job that trains nothing runs (a description): import meanwhile
            loading = threading.Thread(target=worker.preload_compiler, daemon=True)
            loading.start()
            compiler = True
        # One byte when the worker hands over; end of file when it dies before that.
        if os.read(read_end, 1):
            _say(out, pid=pid, started=True)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _say(out, pid=pid, code=code)


if __name__ == "__main__":
    serve()
