"""Sandbox start-up per worker, against the unsandboxed fork, side by side.

Prepares `digits-random10` (cached), then runs the real `noop` seed through the real
runner (`isolation.runner.run_job`: lay out the job, fork the worker from the warm fork
server, confine it, load its inputs, hand over, call, exit, sweep) REPEATS times per
round in each mode, the modes alternating round by round:

    none            MU_BENCH_SANDBOX=none: no confinement (the resource limits only)
    landlock        Landlock + seccomp + limits in each forked worker, plain fork server
    landlock+bwrap  the same, with the fork server inside bubblewrap (this machine's
                    default where both exist)

It prints, per mode, the median start-up (fork to the hand-over to plugin code, as the
runner measures it: covers the fork, the confinement, loading the inputs and building
the task) and the median whole seed (`run_job` wall time), and each sandboxed mode's
extra milliseconds against `none` (the target: at most 50 ms per seed). Each mode keeps
its own fork server; switching modes starts a new one, outside the timed window. Then
the confinement call alone: fork, `confine`, exit against fork, exit.

    .venv/bin/python benchmarks/sandbox_start.py [--repeats 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def confine_alone(repeats: int) -> tuple[float, float]:
    """Median ms of fork + exit, and of fork + confine + exit, from this process."""
    from mu_bench.isolation import policy, sandbox

    work = Path(tempfile.mkdtemp(prefix="mu-bench-confine-"))
    (work / "output").mkdir()
    (work / "inputs").mkdir()
    (work / "tmp").mkdir()
    (work / "request.json").write_text("{}")
    from mu_bench.isolation.protocol import Limits

    pol = policy.job_policy(work, Limits(30.0), "cpu")
    mech = sandbox.detect()
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for confined in (False, True):
            clock = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                if confined:
                    sandbox.confine(pol, mech)
                os._exit(0)
            os.waitpid(pid, 0)
            times[confined].append(time.perf_counter() - clock)
    shutil.rmtree(work, ignore_errors=True)
    return statistics.median(times[False]) * 1e3, statistics.median(times[True]) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("MU_BENCH_HOME", tempfile.mkdtemp(prefix="mu-bench-bench-"))
    os.environ["MU_BENCH_WORKER_START"] = "fork"
    from mu_bench.isolation import sandbox
    from mu_bench.isolation.runner import run_job
    from mu_bench.submission.execute import seed_job, write_inputs
    from mu_bench.submission.plan import plan
    from mu_bench.submission.prepare import prepare

    best = sandbox.detect()
    modes = ["none", "landlock"] + (["landlock+bwrap"] if best == "landlock+bwrap" else [])
    if best not in ("landlock", "landlock+bwrap"):
        raise SystemExit(f"this machine offers '{best}': no Landlock to measure")
    sub = plan("noop", "digits-random10", seeds=1)
    art = prepare(sub.scenario, "cpu")
    work = Path(tempfile.mkdtemp(prefix="mu-bench-start-", dir=os.environ.get("MU_BENCH_WORK")))
    limits = sub.worker_limits(30.0)
    job = seed_job(sub, art, 0, limits, "cpu", write_inputs(sub, art, work / "inputs"))
    starts: dict[str, list[float]] = {m: [] for m in modes}
    walls: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for _ in range(args.rounds):
            for mode in modes:
                os.environ[sandbox.FORCE_VAR] = mode
                run_job(job, work / f"warm-{mode}")  # a new fork server, outside the timing
                for i in range(args.repeats):
                    clock = time.perf_counter()
                    out = run_job(job, work / f"{mode}-{i}")
                    walls[mode].append(time.perf_counter() - clock)
                    assert out.status == "ok" and out.sandbox == mode, out
                    starts[mode].append(out.startup_seconds)
                    shutil.rmtree(work / f"{mode}-{i}", ignore_errors=True)
    finally:
        os.environ.pop(sandbox.FORCE_VAR, None)
        shutil.rmtree(work, ignore_errors=True)
    n = len(starts["none"])
    base_start = statistics.median(starts["none"])
    base_wall = statistics.median(walls["none"])
    print(f"noop seed through the runner, medians of {n} per mode ({args.rounds} rounds):")
    for mode in modes:
        s, w = statistics.median(starts[mode]), statistics.median(walls[mode])
        extra = "" if mode == "none" else (
            f"   extra vs none: start-up {1e3 * (s - base_start):+.1f} ms, "
            f"seed {1e3 * (w - base_wall):+.1f} ms"
        )  # fmt: skip
        print(f"  {mode:15s} start-up {1e3 * s:7.1f} ms   whole seed {1e3 * w:7.1f} ms{extra}")
    plain, confined = confine_alone(max(20, args.repeats))
    print(
        f"fork + exit {plain:.1f} ms, fork + confine + exit {confined:.1f} ms: "
        f"confine() costs {confined - plain:+.1f} ms ({best})"
    )


if __name__ == "__main__":
    main()
