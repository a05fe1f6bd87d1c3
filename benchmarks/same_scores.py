"""Do two checkouts score the same submissions identically?

Runs `mu-bench submit METHOD -s SCENARIO --json` with each tree's own interpreter
(`TREE/.venv/bin/python`), one cache shared by both (so both score against the same
prepared models), one store each, and compares the documents: every per-seed metric,
every aggregate, the reference, the notes and the statuses must be exactly equal (floats
compared as their JSON text, so NaN equals NaN); only what measures time may differ
(seconds, speedup, timings, the run id). Prints one line per submission and exits 1 on
any difference, naming it.

    .venv/bin/python benchmarks/same_scores.py --baseline /work/main \
        [--methods finetune noop] [--scenarios digits-random10 digits-class3] [--seeds N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
# What measures time (or names the run), not what a method scored.
TIMED = {"unlearn_seconds", "wall_seconds", "speedup", "timings", "run_id"}


def submit(tree: Path, home: Path, cache: Path, method: str, scenario: str, seeds: int | None):
    env = dict(
        os.environ, MU_BENCH_HOME=str(home), MU_BENCH_CACHE=str(cache), MLFLOW_DISABLE_TELEMETRY="1"
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MU_BENCH_TIMINGS_FILE", None)
    home.mkdir(parents=True, exist_ok=True)
    cmd = [str(tree / ".venv/bin/python"), "-m", "mu_bench", "submit", method, "-s", scenario]
    cmd += ["--json", *(["--seeds", str(seeds)] if seeds else [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=home)
    if proc.returncode:
        sys.exit(f"{tree}: {' '.join(cmd[2:])} exited {proc.returncode}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def differences(a, b, path: str = "") -> list[str]:
    """Where two JSON documents differ, the keys in TIMED aside."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only in one" for k in sorted(set(a) ^ set(b)) if k not in TIMED]
        for k in sorted(set(a) & set(b)):
            if k not in TIMED:
                out += differences(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if json.dumps(a) == json.dumps(b) else [f"{path}: {a!r} != {b!r}"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    ap.add_argument("--tree", type=Path, default=HERE, help="default: this checkout")
    ap.add_argument("--methods", nargs="+", default=["finetune", "noop"])
    ap.add_argument("--scenarios", nargs="+", default=["digits-random10", "digits-class3"])
    ap.add_argument("--seeds", type=int, default=None, help="default: the scenario's")
    ap.add_argument("--cache", type=Path, default=None, help="a prepared cache to share")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mu-bench-same-"))
    cache = args.cache or scratch / "cache"
    failed = False
    for scenario in args.scenarios:
        for method in args.methods:
            docs = [
                submit(tree, scratch / name, cache, method, scenario, args.seeds)
                for tree, name in ((args.baseline, "baseline"), (args.tree, "tree"))
            ]
            diff = differences(*docs)
            compared = len(docs[0]["metrics"]) + sum(len(s["metrics"]) for s in docs[0]["seeds"])
            verdict = "identical" if not diff else f"{len(diff)} DIFFERENCES"
            print(
                f"{method:10s} {scenario:16s} {len(docs[0]['seeds'])} seeds, "
                f"{compared} metric values, score {docs[0]['metrics'].get('score')}: {verdict}"
            )
            for d in diff[:20]:
                print("   ", d)
            failed |= bool(diff)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
