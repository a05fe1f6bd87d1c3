"""The warm `mu-bench submit`, sandboxed against unsandboxed, side by side.

Prepares the scenario once (and submits `noop` once, so the store exists and the
reference metrics are cached), then runs `mu-bench submit METHOD -s SCENARIO --json`
REPEATS times in each mode, alternating: this machine's sandbox (`landlock+bwrap` where
both exist) and `MU_BENCH_SANDBOX=none`. Prints the median wall time of each, their
ratio (the target: at most 1.10), the median per-seed start-up the runner measured and
the sandbox each run reports.

    .venv/bin/python benchmarks/sandbox_submit.py [--method finetune] \
        [--scenario digits-random10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="finetune")
    ap.add_argument("--scenario", default="digits-random10")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=None, help="default: the scenario's (8)")
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="mu-bench-bench-")
    env = dict(os.environ, MU_BENCH_HOME=home, MLFLOW_DISABLE_TELEMETRY="true")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MU_BENCH_SANDBOX", None)
    mu = [sys.executable, "-m", "mu_bench"]
    subprocess.run([*mu, "prepare", args.scenario], env=env, check=True, capture_output=True)
    subprocess.run(
        [*mu, "submit", "noop", "-s", args.scenario, "-n", "1"],
        env=env,
        check=True,
        capture_output=True,
    )
    seeds = ["-n", str(args.seeds)] if args.seeds else []
    cmd = [*mu, "submit", args.method, "-s", args.scenario, *seeds, "--json"]
    modes = {"sandboxed": {}, "none": {"MU_BENCH_SANDBOX": "none"}}
    walls: dict[str, list[float]] = {m: [] for m in modes}
    startups: dict[str, list[float]] = {m: [] for m in modes}
    tags: dict[str, set[str]] = {m: set() for m in modes}
    for _ in range(args.repeats):
        for mode, extra in modes.items():
            clock = time.perf_counter()
            proc = subprocess.run(
                cmd, env={**env, **extra}, check=True, capture_output=True, text=True
            )
            walls[mode].append(time.perf_counter() - clock)
            doc = json.loads(proc.stdout)
            assert doc["status"] == "ok", doc["seeds"]
            tags[mode].add(doc["sandbox"])
            startups[mode].append(doc["timings"].get("worker_startup_seconds", float("nan")))
    sandboxed, plain = statistics.median(walls["sandboxed"]), statistics.median(walls["none"])
    n = len(walls["none"])
    print(f"warm `mu-bench submit {args.method} -s {args.scenario}`, medians of {n}:")
    for mode in modes:
        print(
            f"  {mode:9s} {statistics.median(walls[mode]):6.2f} s wall, worker start-up "
            f"{1e3 * statistics.median(startups[mode]):6.1f} ms per seed, "
            f"sandbox {'/'.join(sorted(tags[mode]))}"
        )
    print(f"sandboxed / unsandboxed = {sandboxed / plain:.3f}")


if __name__ == "__main__":
    main()
