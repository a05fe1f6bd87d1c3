"""Where the wall time of a warm `mu-bench submit` goes, part by part.

Runs `mu-bench submit METHOD --json` REPEATS times with the scenario's cache built and
its store created, and reads the stages' ends (epoch seconds) and each seed's times from
the file named by `MU_BENCH_TIMINGS_FILE` (`harness/cli/submit.py` writes it). The
parts are consecutive stretches of the harness process's own timeline, from this
script's launch of it to its end, so they add up to the wall time exactly. The seeds'
stretch is split by what the workers do at each moment (start-up, the method, saving
and exit; nothing: the harness between workers), the most useful part winning where
several jobs run at once (`--jobs N`, the default one per core), so it adds up too.
What runs meanwhile in the helper processes (the fork server's start, the store
writer's MLflow import) and on the scorer thread is listed apart, as overlapped.
Prints each part's median and share of the median wall time.

With `--baseline TREE`, each repeat first runs the same submit with TREE's interpreter
(`TREE/.venv/bin/python`, its own store, the same cache) and the script prints both
medians and their ratio: the two are measured side by side, under the same load. CPU
seconds (user + system, of the submit and every process it started, helpers included)
are printed too: on a shared machine they vary less than the wall time.

With `--busy N`, N more processes spin on the CPU throughout (other work on the machine,
a slower host); the line of medians also lists how many fork servers each submit of this
checkout started (the timings file's `fork_servers`).

Stop 23 (3 Dec), `MU_BENCH_SANDBOX=landlock ... --repeats 5 --busy 1 --baseline TREE`,
TREE = 635b7b2 (stop 22's last commit): 15.68 s against 16.85 s (0.93, pairs 0.91), CPU
0.88 (20.45 s against 23.12 s); this code started one fork server in every submit, where
stop 22's started a second one (2+ s of CPU) whenever seed 1 had waited a second for
seed 0, as on a loaded machine it did (3 of 3 scratch runs with one spinning process;
about half of them on this host's slow morning with none). Without load the two are
even (`--repeats 9`: 0.98, pairs 0.99, CPU 1.00). Against the issue's own code (f129ce5,
its own cache, `--repeats 7`): 9.49 s against 15.55 s, 0.61 (pairs 0.61); the host ran
1.10x slower than on the issue's day (14.2 s), so about 8.7 s at that speed.

Measured against the code issue 10 measured (3 Dec, stop 22, `--repeats 7 --baseline
TREE --baseline-cache CACHE2 --cache CACHE`, TREE = f129ce5, with its own cache; load
1.6-2.0): that code took 14.21 s median, the 14.2 s the issue reported, so the host ran
at the issue's speed; this code (81d6e45) took 8.52 s, a ratio of 0.60 (pairs 0.60),
with a sandbox around every worker that code lacked. Its parts: CLI imports 0.50, checks
0.09, plan 2.27, prepare 0.85, seed 0 waits 0.10, method 1.76, worker start-up 0.92,
between workers 0.22, evaluation after the last seed 0.64, figures 0.65, record 0.16,
exit 0.10 (sum of parts - wall: 0.00). Unsandboxed (`MU_BENCH_SANDBOX=none
... --repeats 5 --baseline TREE`, TREE = 5141816, stop 21's last commit): 8.47 s against
9.33 s (0.91, pairs 0.88, CPU 0.93), the store's setting read by the store writer
instead of MLflow imported here.

Measured (3 Dec, stop 21, `--repeats 7 --baseline TREE --cache CACHE`, TREE = 53d0329,
stop 20's last commit; load 2.3-2.7 on the 2-core machine, whose speed varies by 1.4x
with the host, so only ratios measured side by side compare): this 8.45 s against 9.90 s,
a ratio of 0.85 (0.84 as the median of pairs), CPU 0.93. Earlier runs of this stop's
code gave 0.85 (pairs 0.81) and 0.90 (0.86). The changes: the fork server imports with
the collector off (standalone, 4.4-5.0 s of CPU became 3.3-3.4 s) and takes
torch._dynamo while it describes the method, not before; this process imports torch and
scikit-learn on a thread while plan waits, and runs OpenBLAS on one thread (its second
thread spun 0.8-1.0 s of CPU a submit); the store writer records while the figures are
drawn. The parts of this code's median, in seconds and share of the wall time:

    interpreter + CLI imports                  0.49 (6%)    imports (torch, ...), plan   2.24 (27%)
    checks, helpers started                    0.08 (1%)    prepare (cache hit)          0.79 (9%)
    seed 0 waits for the fork server           0.15 (2%)    method (unlearn)             1.96 (23%)
    worker start-up                            1.01 (12%)   harness between workers      0.18 (2%)
    evaluation after the last seed             0.61 (7%)    figures                      0.64 (8%)
    record (store writer)                      0.16 (2%)    JSON out, exit               0.10 (1%)
    overlapped: fork server start to first fork 3.17, MLflow import in the writer 5.38,
    store opened 3.37 after prepare, scoring seeds ahead (thread) 1.71, workers' time
    summed 3.04

The machine is CPU-bound now. The CPU this script prints misses the fork server's and
its workers' under bubblewrap (killed with the harness, they are never reaped with their
usage: 9.9-10.1 s counted, against 15.4-17.2 s for the same submit without bubblewrap).
`MU_BENCH_SANDBOX=landlock benchmarks/submit_breakdown.py --repeats 3` counts them all:
15.9 s of CPU for 8.75 s of wall time, at least 8 s on 2 cores even if nothing ever
waited. A scratch run that timed each thread and helper (not a committed command) split
about 14 s as 6.3 s in the harness (torch 1.5, scikit-learn and matplotlib 1.6, scoring
1.0, the main thread 1.6), 2.7 s in the store writer (MLflow), 2.8 s in the fork server
(torch, torch._dynamo) and 2.0 s in the workers: about 8 s of imports, 1.6 s of method.

    .venv/bin/python benchmarks/submit_breakdown.py [--method finetune]
        [--scenario digits-random10] [--repeats 5] [--seeds N] [--jobs N]
        [--baseline /work/main [--baseline-cache CACHE]] [--busy N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

TIMINGS = "MU_BENCH_TIMINGS_FILE"


def adopt_orphans() -> None:
    """Become the reaper of orphaned descendants (Linux), so that the CPU time of a
    submit's helper processes, which outlive it by moments, is counted too."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


SPINNING: set[int] = set()  # `--busy` processes: not the submit's helpers


def run(
    python: str, args: list[str], env: dict, cwd: Path
) -> tuple[float, float, float, str, float]:
    """(launch epoch, end epoch, wall seconds, stdout, CPU seconds of every process it
    started) of `python -m mu_bench ARGS`."""
    cpu = cpu_seconds()
    launch, start = time.time(), time.perf_counter()
    proc = subprocess.run(
        [python, "-m", "mu_bench", *args], capture_output=True, text=True, env=env, cwd=cwd
    )
    wall, end = time.perf_counter() - start, time.time()
    while True:  # its helpers, now ours: they end as their pipes close
        helpers = [p.pid for p in psutil.Process().children() if p.pid not in SPINNING]
        if not helpers:
            break
        for pid in helpers:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    if proc.returncode:
        sys.exit(f"{python} -m mu_bench {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return launch, end, wall, proc.stdout, cpu_seconds() - cpu


# What a moment of the seeds' stretch is spent on, by priority: when several jobs run at
# once (a pool), a moment counts for the most useful thing any of them does.
SEED_PARTS = (
    "method (unlearn)",
    "worker start-up (fork to timed call)",
    "worker: weights saved, exit",
)
# No worker alive: a seed's result taken in (leftovers swept, result read, weights
# checked), the next job laid out and forked.
BETWEEN = "harness between workers"


def seed_intervals(seeds: list[dict]) -> list[tuple[float, float, str]]:
    """(start, end, part) of each seed's phases, in epoch seconds, from the seed's arrival
    in the harness and the runner's times (another clock): the worker's exit is placed
    at its arrival, so the harness's time taking a result in counts before its fork."""
    out = []
    for s in seeds:
        started = s["arrived"] - s["wall"]
        spawned = started - (s["startup"] or 0.0)
        ran = min(s["unlearn"] or 0.0, s["wall"])
        out += [
            (spawned, started, SEED_PARTS[1]),
            (started, started + ran, SEED_PARTS[0]),
            (started + ran, started + s["wall"], SEED_PARTS[2]),
        ]
    return out


def attribute(start: float, end: float, intervals: list[tuple[float, float, str]]) -> dict:
    """Split [start, end] among the parts: each moment goes to the highest-priority part
    whose interval covers it, else to BETWEEN. The values add up to end - start."""
    cuts = sorted({start, end, *(t for a, b, _ in intervals for t in (a, b) if start < t < end)})
    out = dict.fromkeys((*SEED_PARTS, BETWEEN), 0.0)
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        mid = (lo + hi) / 2
        active = [p for a, b, p in intervals if a <= mid < b]
        part = min(active, key=SEED_PARTS.index) if active else BETWEEN
        out[part] += hi - lo
    return out


def parts(launch: float, end: float, t: dict) -> tuple[dict[str, float], dict[str, float]]:
    """(critical-path parts that add up to end - launch, overlapped work)."""
    m, seeds, writer = t["marks"], list(t["seeds"].values()), t.get("writer", {})
    ran = [s for s in seeds if s["arrived"] and s["wall"] is not None]
    intervals = seed_intervals(ran)
    forked = min((a for a, _, p in intervals if p == SEED_PARTS[1]), default=m["executed"])
    forked = max(forked, m["prepared"])
    seeds_part = attribute(forked, m["executed"], intervals)
    path = {
        "interpreter + CLI imports": m["submit"] - launch,
        "checks; fork server, store writer started": m["helpers"] - m["submit"],
        "imports (torch, the method), plan, executor": m["planned"] - m["helpers"],
        "prepare (cache hit)": m["prepared"] - m["planned"],
        "seed 0 waits for the fork server (inputs written)": forked - m["prepared"],
        **seeds_part,
        "evaluation after the last seed": m["evaluated"] - m["executed"],
        "figures": m["figures"] - m["evaluated"],
        "record (store writer)": m["recorded"] - m["figures"],
        "JSON out, process exit": end - m["recorded"],
    }
    aside = {
        "fork server: start to first fork": forked - m["helpers"],
        "store writer: MLflow imported": writer.get("imported", 0) - writer.get("started", 0),
        "store writer: store opened": writer.get("opened", 0) - m["prepared"],
        "store writer: record itself": writer.get("recorded", 0) - writer.get("asked", 0),
        "scoring each seed ahead (thread)": t["report"].get("scoring_ahead_seconds", 0.0),
        "seeds' worker time, summed": sum(s["wall"] + (s["startup"] or 0.0) for s in ran),
    }
    return path, aside


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="finetune")
    ap.add_argument("--scenario", default="digits-random10")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=None, help="default: the scenario's")
    ap.add_argument("--jobs", type=int, default=None, help="default: submit's (one per core)")
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout, side by side")
    ap.add_argument("--cache", type=Path, default=None, help="a prepared cache to use")
    ap.add_argument(
        "--baseline-cache",
        type=Path,
        default=None,
        help="the baseline's own cache (default: the same), for a checkout whose cache "
        "layout differs: prepared before the first repeat when empty",
    )
    ap.add_argument(
        "--busy",
        type=int,
        default=0,
        help="keep N more processes spinning on the CPU meanwhile (other work on the "
        "machine, a slower host)",
    )
    args = ap.parse_args()
    adopt_orphans()
    scratch = Path(tempfile.mkdtemp(prefix="mu-bench-bench-"))
    timings_file = scratch / "timings.json"
    base_env = dict(
        os.environ,
        MLFLOW_DISABLE_TELEMETRY="true",
        MU_BENCH_CACHE=str(args.cache or scratch / "cache"),
    )
    base_env.pop("MLFLOW_TRACKING_URI", None)
    base_env.pop(TIMINGS, None)
    trees = {"this": sys.executable}
    if args.baseline:
        trees["baseline"] = str(args.baseline / ".venv/bin/python")
    envs = {}
    for name, python in trees.items():
        (scratch / name).mkdir()
        envs[name] = dict(base_env, MU_BENCH_HOME=str(scratch / name))
        if name == "baseline" and args.baseline_cache:
            envs[name]["MU_BENCH_CACHE"] = str(args.baseline_cache)
        # The cache, then the store: neither is part of a warm run.
        run(python, ["prepare", args.scenario, "--json"], envs[name], scratch)
        run(python, ["submit", "noop", "-s", args.scenario, "-n", "1"], envs[name], scratch)
    envs["this"][TIMINGS] = str(timings_file)

    submit = ["submit", args.method, "-s", args.scenario]
    submit += ["--seeds", str(args.seeds)] if args.seeds else []
    submit += ["--jobs", str(args.jobs)] if args.jobs else []
    submit.append("--json")
    rows, baseline, cpu, base_cpu, loads = [], [], [], [], [loadavg()]
    servers: list[int] = []  # fork servers each of this checkout's submits started
    spin = "while True: pass"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(args.busy)]
    SPINNING.update(proc.pid for proc in busy)
    try:
        for _ in range(args.repeats):
            if args.baseline:
                result = run(trees["baseline"], submit, envs["baseline"], scratch)
                baseline.append(result[2])
                base_cpu.append(result[4])
            launch, end, wall, out, used = run(sys.executable, submit, envs["this"], scratch)
            n_seeds = len(json.loads(out)["seeds"])
            timings = json.loads(timings_file.read_text())
            rows.append((wall, *parts(launch, end, timings)))
            if "fork_servers" in timings:
                servers.append(timings["fork_servers"])
            cpu.append(used)
            loads.append(loadavg())
            base_wall = f"baseline {baseline[-1]:.2f} s, " if baseline else ""
            print(f"repeat {len(rows)}: {base_wall}this {wall:.2f} s; load {loads[-1]}", flush=True)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()

    wall = statistics.median(r[0] for r in rows)
    busy_note = f", with {args.busy} more processes spinning" if args.busy else ""
    print(
        f"warm `mu-bench {' '.join(submit[:-1])}` ({n_seeds} seeds), "
        f"median of {args.repeats}: {wall:.2f} s wall (runs: "
        + ", ".join(f"{r[0]:.2f}" for r in rows)
        + f"), {statistics.median(cpu):.2f} s CPU (all its processes){busy_note}; fork "
        f"servers started: {', '.join(str(n) for n in servers) or 'not reported'}"
    )
    if baseline:
        base = statistics.median(baseline)
        pairs = statistics.median(r[0] / b for r, b in zip(rows, baseline, strict=True))
        print(
            f"baseline {args.baseline}, side by side: {base:.2f} s median (runs: "
            + ", ".join(f"{b:.2f}" for b in baseline)
            + f"), {statistics.median(base_cpu):.2f} s CPU; this / baseline: wall "
            f"{wall / base:.2f} (median of pairs {pairs:.2f}), CPU "
            f"{statistics.median(cpu) / statistics.median(base_cpu):.2f}"
        )
    print(f"load average (1, 5, 15 min) before and after each repeat: {' | '.join(loads)}")
    print("critical path (adds up to the wall time):")
    for name in rows[0][1]:
        value = statistics.median(r[1][name] for r in rows)
        print(f"  {name:44s} {value:6.2f} s  {value / wall:6.1%}")
    total = statistics.median(sum(r[1].values()) - r[0] for r in rows)
    print(f"  {'(sum of parts - wall)':44s} {total:6.2f} s")
    print("overlapped (helper processes, scorer thread):")
    for name in rows[0][2]:
        print(f"  {name:44s} {statistics.median(r[2][name] for r in rows):6.2f} s")


if __name__ == "__main__":
    main()
