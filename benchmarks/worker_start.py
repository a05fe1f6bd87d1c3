"""Worker start-up: forked from the warm fork server vs a fresh interpreter.

Runs the `noop` method through the real runner REPEATS times with each start mode and
prints the median start-up (spawn to the moment `unlearn()` is called) and the median
whole-seed wall time, and their ratio.

    .venv/bin/python benchmarks/worker_start.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("MU_BENCH_HOME", tempfile.mkdtemp(prefix="mu-bench-bench-"))
    from mu_bench.isolation.protocol import Limits
    from mu_bench.isolation.runner import run_job
    from mu_bench.submission.execute import seed_job, write_inputs
    from mu_bench.submission.plan import plan
    from mu_bench.submission.prepare import prepare

    sub = plan("noop", "digits-random10", seeds=1)
    art = prepare(sub.scenario, "cpu")
    work = Path(tempfile.mkdtemp(prefix="mu-bench-start-"))
    job = seed_job(sub, art, 0, Limits(30.0), "cpu", write_inputs(sub, art, work / "inputs"))
    results = {}
    for mode in ("fork", "spawn", "fork", "spawn"):  # interleaved: load drifts hit both
        os.environ["MU_BENCH_WORKER_START"] = mode
        starts, walls = results.setdefault(mode, ([], []))
        for _ in range(args.repeats):
            clock = time.perf_counter()
            out = run_job(job, work / f"{mode}-{len(starts)}")
            walls.append(time.perf_counter() - clock)
            assert out.status == "ok", out
            starts.append(out.startup_seconds)
    fork, spawn = results["fork"], results["spawn"]
    f_start, s_start = statistics.median(fork[0]), statistics.median(spawn[0])
    f_wall, s_wall = statistics.median(fork[1]), statistics.median(spawn[1])
    n = len(fork[0])
    print(
        f"worker start-up, median of {n}: fork {f_start:.3f} s, spawn {s_start:.3f} s "
        f"(spawn / fork = {s_start / f_start:.1f}x)"
    )
    print(
        f"whole noop seed, median of {n}:  fork {f_wall:.3f} s, spawn {s_wall:.3f} s "
        f"(spawn / fork = {s_wall / f_wall:.1f}x)"
    )


if __name__ == "__main__":
    main()
