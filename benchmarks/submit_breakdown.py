"""Where the wall time of a warm `mu-bench submit` goes.

Runs `mu-bench submit METHOD --json` REPEATS times with the scenario's cache already
built and splits each run's wall clock into: CLI imports (measured separately in a
fresh interpreter; MLflow's own start-up overlaps the seeds), prepare (a cache hit),
worker start-up (interpreter, torch import, inputs), the method itself, evaluation,
figures, the MLflow record, and the rest. Prints
medians and each part's share of the wall time.

    .venv/bin/python benchmarks/submit_breakdown.py [--method finetune] [--repeats 5] [--seeds N]
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

# What the CLI imports before any work; mlflow loads in a background thread once the
# scenario is prepared (`store.open_in_background`), overlapping the seeds.
IMPORTS = (
    "import torch, mu_bench.cli.main, mu_bench.submission.pipeline, mu_bench.leaderboard.store"
)


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="finetune")
    ap.add_argument("--scenario", default="digits-random10")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=None, help="default: the scenario's")
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="mu-bench-bench-")
    timings_file = os.path.join(home, "timings.json")
    env = dict(
        os.environ,
        MU_BENCH_HOME=home,
        MLFLOW_DISABLE_TELEMETRY="true",
        MU_BENCH_TIMINGS_FILE=timings_file,  # every stage's time, figures and record too
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    mu = [sys.executable, "-m", "mu_bench"]
    subprocess.run(
        [*mu, "prepare", args.scenario, "--json"], env=env, check=True, capture_output=True
    )
    subprocess.run(
        [*mu, "submit", "noop", "-s", args.scenario, "-n", "1"],
        env=env,
        check=True,
        capture_output=True,
    )  # creates the store: not part of warm runs

    rows = []
    for _ in range(args.repeats):
        imports, _ = timed([sys.executable, "-c", IMPORTS], env)
        seeds = ["--seeds", str(args.seeds)] if args.seeds else []
        wall, out = timed([*mu, "submit", args.method, "-s", args.scenario, *seeds, "--json"], env)
        doc = json.loads(out)
        with open(timings_file) as fh:
            t = json.load(fh)
        seeds = doc["seeds"]
        startup = t.get("worker_startup_seconds", 0.0) * len(seeds)
        method = sum(s["unlearn_seconds"] or 0.0 for s in seeds)
        worker_wall = sum(s["wall_seconds"] or 0.0 for s in seeds)
        parts = {
            "CLI imports": imports,
            "prepare (cache hit)": t["prepare_seconds"],
            "worker start-up": startup,
            "method (unlearn)": method,
            "worker exit + save": max(0.0, worker_wall - method),
            "evaluation": t["evaluate_seconds"],
            "figures": t.get("figures_seconds", 0.0),
            "MLflow record": t["record_seconds"],
        }
        parts["other"] = wall - sum(parts.values())
        rows.append((wall, parts, len(seeds)))

    wall = statistics.median(r[0] for r in rows)
    print(
        f"warm `mu-bench submit {args.method} -s {args.scenario}` ({rows[0][2]} seeds), "
        f"median of {args.repeats}: {wall:.2f} s wall"
    )
    for name in rows[0][1]:
        value = statistics.median(r[1][name] for r in rows)
        print(f"  {name:22s} {value:6.2f} s  {value / wall:6.1%}")


if __name__ == "__main__":
    main()
