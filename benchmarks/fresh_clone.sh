#!/usr/bin/env bash
# `make run` on a fresh clone, install included: clones this repository into a
# temporary folder (no .venv, no cache, no store) and times `make install` and the rest
# of `make run` (prepare + four submits + leaderboard) separately.
#
#     benchmarks/fresh_clone.sh [REPO]        (default: this checkout's HEAD)
set -euo pipefail
repo=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
dir=$(mktemp -d /tmp/mu-bench-fresh.XXXXXX)
trap 'rm -rf "$dir"' EXIT
git clone -q "$repo" "$dir/mu-bench"
cd "$dir/mu-bench"
t0=$(date +%s.%N)
make install >install.log 2>&1
t1=$(date +%s.%N)
make run >run.log 2>&1
t2=$(date +%s.%N)
tail -n 25 run.log
python3 - "$t0" "$t1" "$t2" <<'PY'
import sys
t0, t1, t2 = map(float, sys.argv[1:])
total = t2 - t0
print(f"fresh clone `make run`: {total:.0f} s total = install {t1 - t0:.0f} s "
      f"({(t1 - t0) / total:.0%}) + prepare, 4 submits, leaderboard {t2 - t1:.0f} s "
      f"({(t2 - t1) / total:.0%})")
PY
