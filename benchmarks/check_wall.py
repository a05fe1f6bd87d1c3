"""`mu-bench check METHOD` wall time, two installations side by side.

Runs the real command (`python -m mu_bench check METHOD --json`, a fresh interpreter
each time, as a user runs it) with two interpreters, alternating round by round so that
the machine's load drifts hit both: `--before` (default: the main checkout's venv) and
`--after` (default: this interpreter). Both share one temporary home and artifact cache,
prepared by an untimed warm-up run of each first, so every timed run finds `digits-tiny`
cached. Prints each side's median and spread and the after/before ratio of medians.

    nice -n 19 .venv/bin/python benchmarks/check_wall.py [--method finetune] [--rounds 5]

Measured (2 shared, busy cores; main 1c731a1 against the check worker of issue 11,
`check finetune`, 5 rounds): before 10.84 s median (9.98-19.68), after 10.77 s
(8.97-16.07), ratio 0.99: the check worker (forked with torch preloaded) costs no more
than importing the plugin, and torch with it, in the harness did.
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


def run_once(python: str, method: str, env: dict[str, str]) -> tuple[float, dict]:
    clock = time.perf_counter()
    proc = subprocess.run(
        [python, "-m", "mu_bench", "check", method, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    seconds = time.perf_counter() - clock
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{python}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return seconds, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="/work/main/.venv/bin/python")
    ap.add_argument("--after", default=sys.executable)
    ap.add_argument("--method", default="finetune")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="mu-bench-check-wall-")
    env = {
        **os.environ,
        "MU_BENCH_HOME": home,
        "MU_BENCH_CACHE": os.path.join(home, "cache"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    sides = {"before": args.before, "after": args.after}
    times: dict[str, list[float]] = {k: [] for k in sides}
    try:
        for name, python in sides.items():  # warm-up: prepares the scenario once
            _, doc = run_once(python, args.method, env)
            print(f"{name}: {python}: {doc['counts']}", flush=True)
        for r in range(args.rounds):
            order = list(sides.items()) if r % 2 == 0 else list(sides.items())[::-1]
            for name, python in order:
                seconds, _ = run_once(python, args.method, env)
                times[name].append(seconds)
                print(f"round {r}: {name} {seconds:.2f} s", flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for name, ts in times.items():
        print(
            f"{name:6}  median {statistics.median(ts):.2f} s  "
            f"(min {min(ts):.2f}, max {max(ts):.2f}, n={len(ts)})"
        )
    ratio = statistics.median(times["after"]) / statistics.median(times["before"])
    print(f"after / before (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
