"""`mu-bench ui` before and after issue 12, side by side on one store, medians of REPEATS
starts (alternating, so both see the same machine load):

- before: what `mu-bench ui` ran until then, `mlflow ui` with MLflow's defaults (four
  workers, its job runner on);
- after: `mu-bench ui` (one worker, job runner off, the board's views saved first).

For each: seconds from the command's start to the UI's first answer (`/health`, HTTP
200), then, once it answers (or at `--limit`, when it has not), the processes in its
tree and their resident memory. A start that never answers within `--limit` counts as
infinitely slow in the median: on a loaded machine uvicorn kills MLflow's default four
workers when they miss its health pings while starting, and starts them again.

    .venv/bin/python benchmarks/ui_startup.py [--repeats 3] [--limit 180]
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.test_board

from mu_bench.leaderboard import store  # noqa: E402
from mu_bench.leaderboard.server import free_port  # noqa: E402


def commands(uri: str, port: int) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "before: mlflow ui, MLflow's defaults": [
            *(py, "-m", "mlflow", "ui", "--backend-store-uri", uri),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        "after: mu-bench ui": [
            *(py, "-m", "mu_bench", "ui", "--tracking-uri", uri, "--port", str(port)),
        ],
    }


def answered(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def one_start(cmd: list[str], port: int, limit: float) -> tuple[float, int, float]:
    """(seconds to the first answer, or inf; processes; resident MiB)."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        seconds = math.inf
        while time.perf_counter() - start < limit:
            if answered(url):
                seconds = time.perf_counter() - start
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[2:4]} exited with {proc.returncode}")
            time.sleep(0.2)
        time.sleep(2)  # workers that start after the first answer count too
        procs = tree(proc.pid)
        rss = 0
        for p in procs:
            try:
                rss += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return seconds, len(procs), rss / 2**20
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=float, default=180, help="seconds to wait for an answer")
    args = parser.parse_args()
    from tests.test_board import REPORTS

    folder = Path(tempfile.mkdtemp(prefix="mu-bench-ui-bench-"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    for report in REPORTS:
        store.record(report, uri)
    results: dict[str, list[tuple[float, int, float]]] = {}
    for i in range(args.repeats):
        names = list(commands(uri, 0))
        for name in names if i % 2 == 0 else reversed(names):
            port = free_port()
            results.setdefault(name, []).append(
                one_start(commands(uri, port)[name], port, args.limit)
            )
            s, n, mb = results[name][-1]
            print(f"  {name}: {s:.1f} s, {n} processes, {mb:.0f} MiB", flush=True)
    print(f"\n{len(REPORTS)} submissions, {args.repeats} starts each, medians:")
    medians = {}
    for name, rows in results.items():
        s, n, mb = (statistics.median(col) for col in zip(*rows, strict=True))
        medians[name] = (s, mb)
        missed = sum(math.isinf(r[0]) for r in rows)
        late = f" ({missed} of {len(rows)} never answered in {args.limit:.0f} s)" if missed else ""
        print(f"{name:40} first answer {s:5.1f} s   {n:3.0f} processes   {mb:6.0f} MiB{late}")
    (b_s, b_mb), (a_s, a_mb) = medians.values()
    print(f"after / before: time {a_s / b_s:.2f}x, memory {a_mb / b_mb:.2f}x")


if __name__ == "__main__":
    main()
