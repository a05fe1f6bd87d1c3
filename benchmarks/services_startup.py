"""Start-up costs of the shared-store and cluster services, medians of REPEATS starts:

- PostgreSQL: initdb of a fresh folder (with and without fsync), `pg_ctl start` to
  accepting connections, `pg_ctl stop`; what `mu-bench server --postgres-dir` and the
  slow tests' `postgres()` pay.
- `mlflow server` to its first `/health` answer, and its resident memory (the server
  and its workers), on SQLite and on that PostgreSQL: mu-bench's light settings (one
  worker, job execution off) side by side with MLflow's defaults (four workers, job
  execution on), each on a fresh store (schema created) and again on the same store.
- A Dask cluster of separate processes (`dask scheduler` + 2 `dask worker`, as
  tests/services.py starts it) until a client sees both workers, side by side with
  `distributed.LocalCluster(n_workers=2)` in-process.

    .venv/bin/python benchmarks/services_startup.py [--repeats 3] [--no-default]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.services

from mu_bench.leaderboard import server as srv  # noqa: E402


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += psutil.Process(pid).memory_info().rss
    return total / 2**20


def bench_postgres(repeats: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for _ in range(repeats):
        for sync in (True, False):
            folder = Path(tempfile.mkdtemp(prefix="mu-bench-bench-pg-"))
            clock = time.perf_counter()
            pg = srv.start_postgres(folder, sync=sync)  # initdb + start + createdb
            first = time.perf_counter() - clock
            clock = time.perf_counter()
            pg.stop()
            stop = time.perf_counter() - clock
            clock = time.perf_counter()
            pg = srv.start_postgres(folder)  # initialised: start + database check only
            again = time.perf_counter() - clock
            pg.stop()
            shutil.rmtree(folder)
            tag = "fsync" if sync else "no fsync"
            out.setdefault(f"PostgreSQL fresh folder ({tag}): initdb+start+createdb", []).append(
                first
            )
            out.setdefault("PostgreSQL restart of an initialised folder", []).append(again)
            out.setdefault("PostgreSQL pg_ctl stop -m fast", []).append(stop)
    return out


def bench_mlflow(repeats: int, default_too: bool) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    settings = {"light": (1, "false")}
    if default_too:
        settings["MLflow defaults"] = (4, "true")
    for _ in range(repeats):
        for backend in ("sqlite", "postgres"):
            for label, (workers, jobs) in settings.items():
                folder = Path(tempfile.mkdtemp(prefix="mu-bench-bench-mlflow-"))
                folder.chmod(0o755)
                pg = None
                if backend == "postgres":
                    pg = srv.start_postgres(folder / "pg", sync=False)
                uri = pg.uri_with_password if pg else f"sqlite:///{folder / 'mlflow.db'}"
                try:
                    for run in ("fresh store", "same store"):
                        clock = time.perf_counter()
                        server = srv.start_mlflow(
                            uri,
                            str(folder / "artifacts"),
                            workers=workers,
                            log=folder / "log",
                            env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": jobs},
                        )
                        took = time.perf_counter() - clock
                        time.sleep(2)  # let the workers settle before reading memory
                        mem = rss_mb(server.pids())
                        server.stop()
                        name = f"mlflow server, {backend}, {label}, {run}"
                        out.setdefault(f"{name}: s to /health", []).append(took)
                        out.setdefault(f"{name}: MB resident", []).append(mem)
                finally:
                    if pg:
                        pg.stop()
                    shutil.rmtree(folder, ignore_errors=True)
    return out


def bench_dask(repeats: int) -> dict[str, list[float]]:
    from distributed import LocalCluster

    from tests.services import dask_cluster

    out: dict[str, list[float]] = {}
    for _ in range(repeats):
        folder = Path(tempfile.mkdtemp(prefix="mu-bench-bench-dask-"))
        clock = time.perf_counter()
        with dask_cluster(folder, workers=2) as cluster:
            took = time.perf_counter() - clock
            mem = rss_mb(cluster.pids())
            clock = time.perf_counter()
        stop = time.perf_counter() - clock
        shutil.rmtree(folder, ignore_errors=True)
        name = "Dask CLI processes (scheduler + 2 workers)"
        out.setdefault(f"{name}: s to 2 workers", []).append(took)
        out.setdefault("Dask CLI processes: MB resident", []).append(mem)
        out.setdefault("Dask CLI processes: s to stop", []).append(stop)
        clock = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as lc:
            lc.wait_for_workers(2)
            took = time.perf_counter() - clock
        out.setdefault("Dask LocalCluster(n_workers=2) in-process: s to 2 workers", []).append(took)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-default", action="store_true", help="Skip MLflow's default settings.")
    ap.add_argument("--only", choices=("postgres", "mlflow", "dask"), default=None)
    args = ap.parse_args()
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    results: dict[str, list[float]] = {}
    if args.only in (None, "postgres"):
        results.update(bench_postgres(args.repeats))
    if args.only in (None, "dask"):
        results.update(bench_dask(args.repeats))
    if args.only in (None, "mlflow"):
        results.update(bench_mlflow(args.repeats, not args.no_default))
    width = max(map(len, results))
    print(f"{'measure':<{width}}  median  (all)   [{os.cpu_count()} cores]")
    for name, values in results.items():
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:<{width}}  {statistics.median(values):7.2f}  ({shown})")
    for backend in ("sqlite", "postgres"):
        light = f"mlflow server, {backend}, light, same store: MB resident"
        full = f"mlflow server, {backend}, MLflow defaults, same store: MB resident"
        if light in results and full in results:
            ratio = statistics.median(results[full]) / statistics.median(results[light])
            print(f"memory, MLflow defaults / light ({backend}): {ratio:.2f}x")


if __name__ == "__main__":
    main()
