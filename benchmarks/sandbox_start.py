"""Sandbox start-up per worker, against the unsandboxed fork, side by side.

Prepares `digits-random10` (cached), then starts warm fork servers the way the harness
does (a pristine interpreter that imported `mu_bench.worker`), one plain and one under
bubblewrap, and runs the real `noop` worker (`worker.run_in_child`) REPEATS times in
each of these modes, interleaved:

    fork            plain server, plain child (today's harness)
    fork+confine    plain server, child calls sandbox.confine (Landlock, seccomp, limits)
    bwrap+confine   server under bwrap (namespaces, mount view), child confines itself

It prints the median start-up of each (fork to the `started` file, which the worker
writes just before `unlearn()`, so it covers confinement, plugin import, input loading),
the median whole seed (fork to exit) and the extra milliseconds against `fork`; then the
one-off cost of starting a server (spawn to ready: imports torch) plain and under
bwrap, and of a spawned worker (the CUDA path) plain and under bwrap.

    .venv/bin/python benchmarks/sandbox_start.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


# --- the server side (run as `sandbox_start.py --serve`) --------------------------------
def serve() -> None:
    from mu_bench import sandbox, worker  # noqa: F401  (the preload, as mu_bench.forkserver)

    print(json.dumps({"ready": time.time()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        forked = time.time()
        pid = os.fork()
        if pid == 0:
            try:
                if req.get("bare"):  # confinement alone: fork, confine, exit
                    if req["policy"] is not None:
                        sandbox.confine(sandbox.Policy.from_dict(req["policy"]), req["mechanism"])
                    os._exit(0)
                _child(req)
            finally:
                os._exit(70)
        _, status = os.waitpid(pid, 0)
        done = time.time()
        print(json.dumps({"forked": forked, "done": done, "status": status}), flush=True)


def _child(req: dict) -> None:
    from mu_bench import sandbox
    from mu_bench.worker import run_in_child

    seed = req["seed_dir"]
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, name in ((1, "stdout.log"), (2, "stderr.log")):
        handle = os.open(os.path.join(seed, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    env = dict(req["env"])
    if req["policy"] is not None:
        policy = sandbox.Policy.from_dict(req["policy"])
        env.update(policy.environment(os.path.join(seed, "tmp")))
        sandbox.confine(policy, req["mechanism"])
    run_in_child(seed, env, req["sys_path"])


# --- the harness side -------------------------------------------------------------------
class Server:
    def __init__(self, prefix: list[str]):
        started = time.time()
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.ready_seconds = json.loads(self.proc.stdout.readline())["ready"] - started

    def bare(self, policy: dict | None, mechanism: str) -> float:
        """Fork, confine (with a policy), exit: the confinement's own cost."""
        req = {"bare": True, "policy": policy, "mechanism": mechanism}
        self.proc.stdin.write(json.dumps(req) + "\n")
        reply = json.loads(self.proc.stdout.readline())
        assert reply["status"] == 0, reply
        return reply["done"] - reply["forked"]

    def run(self, seed: Path, policy: dict | None, mechanism: str) -> tuple[float, float]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MU_BENCH_")}
        req = {
            "seed_dir": str(seed),
            "env": env,
            "sys_path": list(sys.path),
            "policy": policy,
            "mechanism": mechanism,
        }
        self.proc.stdin.write(json.dumps(req) + "\n")
        reply = json.loads(self.proc.stdout.readline())
        result = json.loads((seed / "result.json").read_text())
        assert reply["status"] == 0 and result["status"] == "ok", (reply, result, seed)
        started = float((seed / "started").read_text())
        return started - reply["forked"], reply["done"] - reply["forked"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    os.environ.setdefault("MU_BENCH_HOME", tempfile.mkdtemp(prefix="mu-bench-bench-"))
    from mu_bench import paths, sandbox
    from mu_bench.artifacts import prepare
    from mu_bench.submit import plan, worker_task, write_inputs

    mechanism = sandbox.detect()
    print(f"sandbox here: {mechanism} (Landlock ABI {sandbox.landlock_abi()})")
    sub = plan("noop", "digits-random10", seeds=1)
    art = prepare(sub.scenario, "cpu")
    work = Path(tempfile.mkdtemp(prefix="mu-bench-sandbox-start-"))
    inputs = write_inputs(sub, art, work / "inputs")
    input_files = [p for p in inputs.values() if p]
    forbidden = [paths.home(), paths.cache_root(), paths.data_root()]
    task = worker_task(sub, art, inputs, 0, 30.0, "cpu")

    def policy_for(seed: Path) -> dict:
        return sandbox.worker_policy(seed, input_files, forbidden).to_dict()

    servers = {"fork": Server([]), "fork+confine": Server([])}
    inner = "landlock" if "landlock" in mechanism else "none"
    bwrap_ok = sandbox.bwrap_path() is not None
    if bwrap_ok:
        outer = sandbox.Policy(
            read=sandbox.SYSTEM_READ
            + sandbox.python_reads(forbidden)
            + (str(Path(__file__).parent),),
            inputs=tuple(input_files),
        )
        servers["bwrap+confine"] = Server(sandbox.bwrap_command([], outer, write_roots=[str(work)]))
    timings: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in servers}
    for i in range(args.repeats):
        for mode, server in servers.items():  # interleaved: load drifts hit every mode
            seed = work / f"{mode}-{i}"
            (seed / "tmp").mkdir(parents=True)
            (seed / "task.json").write_text(json.dumps(task))
            policy = None if mode == "fork" else policy_for(seed)
            start, whole = server.run(seed, policy, inner)
            timings[mode][0].append(start)
            timings[mode][1].append(whole)
    bare: dict[str, list[float]] = {m: [] for m in servers}
    for i in range(args.repeats * 4):
        for mode, server in servers.items():
            policy = None if mode == "fork" else policy_for(work / f"{mode}-{i % args.repeats}")
            bare[mode].append(server.bare(policy, inner))
    base_bare = statistics.median(bare["fork"])
    print(f"fork, confine, exit (no worker), median of {args.repeats * 4}:")
    for mode, times in bare.items():
        b = statistics.median(times)
        print(f"  {mode:14s} {b * 1000:7.2f} ms ({(b - base_bare) * 1000:+6.2f} ms)")
    base_start = statistics.median(timings["fork"][0])
    base_whole = statistics.median(timings["fork"][1])
    print(f"per worker, median of {args.repeats} (noop on digits-random10, real worker):")
    for mode, (starts, wholes) in timings.items():
        s, w = statistics.median(starts), statistics.median(wholes)
        print(
            f"  {mode:14s} start-up {s * 1000:7.1f} ms ({(s - base_start) * 1000:+6.1f} ms)   "
            f"whole seed {w * 1000:7.1f} ms ({(w - base_whole) * 1000:+6.1f} ms)"
        )
    for server in servers.values():
        server.close()
    shutil.rmtree(work, ignore_errors=True)

    # One-off costs: a server (imports torch), and a spawned worker's interpreter.
    def median_ready(prefix: list[str]) -> float:
        times = []
        for _ in range(3):
            s = Server(prefix)
            times.append(s.ready_seconds)
            s.close()
        return statistics.median(times)

    plain_ready = median_ready([])
    line = f"fork server start (once per harness process): plain {plain_ready * 1000:.0f} ms"
    if bwrap_ok:
        bwrap_ready = median_ready(servers["bwrap+confine"].proc.args[:-3])
        extra = (bwrap_ready - plain_ready) * 1000
        line += f", under bwrap {bwrap_ready * 1000:.0f} ms ({extra:+.0f} ms)"
    print(line)

    def median_true(prefix: list[str]) -> float:
        times = []
        for _ in range(args.repeats):
            clock = time.perf_counter()
            subprocess.run([*prefix, sys.executable, "-c", "pass"], check=True)
            times.append(time.perf_counter() - clock)
        return statistics.median(times)

    if bwrap_ok:
        plain = median_true([])
        wrapped = median_true(servers["bwrap+confine"].proc.args[:-3])
        print(
            f"bare interpreter start (the spawn path's extra): plain {plain * 1000:.0f} ms, "
            f"under bwrap {wrapped * 1000:.0f} ms ({(wrapped - plain) * 1000:+.0f} ms)"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main()
