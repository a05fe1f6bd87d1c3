"""Seeds per minute one job at a time, with the local pool (`--jobs`) and on a Dask
cluster, side by side in one run; medians over rounds whose order rotates.

Each round runs the seed jobs of one submission (`execute`: the jobs only; evaluation
and recording are the same for every executor and run in this process) through:

- `serial`: `SerialExecutor`, one job after another (what `submit` did before `--jobs`);
- `jobs 1`, `jobs 2`: `LocalPool(1)`, `LocalPool(2)` (`--jobs 1`, `--jobs 2`);
- `dask`: a Dask scheduler and two single-threaded `dask worker`s, separate processes
  on 127.0.0.1 as a team would start them (tests/services.py), sharing this machine's
  cache, so inputs travel as paths (`--executor dask://127.0.0.1:PORT`).

for `finetune` on `digits-random10` (8 seeds, the scenario's default: the speed-up a
user sees) and `noop` (8 seeds: the jobs do nothing, so their wall time is the
executor's overhead per job). Every executor is warmed once (fork servers started)
before the timed rounds.

    .venv/bin/python benchmarks/parallel_speed.py [--rounds 3] [--seeds 8] [--no-dask]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.services

from mu_bench.isolation.executor import SerialExecutor  # noqa: E402
from mu_bench.isolation.pool import LocalPool, usable_cores  # noqa: E402
from mu_bench.submission.execute import execute  # noqa: E402
from mu_bench.submission.plan import plan  # noqa: E402
from mu_bench.submission.prepare import prepare  # noqa: E402

SCENARIO = "digits-random10"


def timed(sub, art, executor, scratch: Path) -> float:
    """Wall seconds for every seed job of `sub` through `executor`; all must end ok."""
    work = Path(tempfile.mkdtemp(dir=scratch))
    try:
        clock = time.perf_counter()
        result = execute(sub, art, "cpu", work, executor)
        took = time.perf_counter() - clock
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bad = [o.error for o in result.outcomes if o.status != "ok"]
    assert not bad, bad
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--no-dask", action="store_true", help="local executors only")
    args = parser.parse_args()

    art = prepare(plan("noop", SCENARIO).scenario, "cpu")
    subs = {m: plan(m, SCENARIO, seeds=args.seeds) for m in ("finetune", "noop")}
    scratch = Path(tempfile.mkdtemp(prefix="mu-bench-parallel-"))
    with contextlib.ExitStack() as stack:
        executors = {"serial": SerialExecutor(), "jobs 1": LocalPool(1), "jobs 2": LocalPool(2)}
        if not args.no_dask:
            from mu_bench.isolation.dask_executor import DaskExecutor
            from tests.services import dask_cluster

            cluster = stack.enter_context(dask_cluster(scratch / "dask", workers=2, threads=1))
            dask = DaskExecutor.connect("dask://" + cluster.address[len("tcp://") :])
            stack.callback(dask.close)
            executors["dask"] = dask
        for executor in executors.values():  # warm-up: fork servers, Dask connections
            timed(subs["noop"], art, executor, scratch)
        times: dict[tuple[str, str], list[float]] = {}
        names = list(executors)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for method, sub in subs.items():
                for name in order:
                    took = timed(sub, art, executors[name], scratch)
                    times.setdefault((method, name), []).append(took)
                    print(f"round {r + 1} {method:8} {name:7} {took:6.2f} s", file=sys.stderr)
    shutil.rmtree(scratch, ignore_errors=True)

    n = args.seeds
    print(f"\n{n} seeds on {SCENARIO}, {usable_cores()} usable cores, {args.rounds} rounds")
    print(f"{'method':9}{'executor':9}{'median s':>10}{'seeds/min':>11}{'vs serial':>11}")
    for method in subs:
        base = statistics.median(times[(method, "serial")])
        for name in executors:
            med = statistics.median(times[(method, name)])
            print(f"{method:9}{name:9}{med:10.2f}{60 * n / med:11.1f}{base / med:10.2f}x")
    jobs2 = statistics.median(times[("finetune", "jobs 2")])
    jobs1 = statistics.median(times[("finetune", "jobs 1")])
    print(f"\nfinetune: --jobs 2 runs {jobs1 / jobs2:.2f}x the seeds per minute of --jobs 1")
    if "dask" in executors:
        pool = statistics.median(times[("noop", "jobs 2")])
        dask = statistics.median(times[("noop", "dask")])
        # both run 2 jobs at once: the difference over n jobs is Dask's cost per job
        print(
            f"noop: Dask (2 workers x 1 thread) against --jobs 2: "
            f"{1000 * (dask - pool) / n:+.0f} ms per job ({dask / pool:.2f}x the wall time)"
        )
        fdask = statistics.median(times[("finetune", "dask")])
        print(f"finetune: Dask against --jobs 2: {fdask / jobs2:.2f}x the wall time")


if __name__ == "__main__":
    main()
