"""The reference leaderboard: every built-in method on both digits scenarios.

`make leaderboard` (`python -m mu_bench.leaderboard.reference`) runs one grid
(`submission.grid`, through the local pool: `--jobs`, or `--executor dask://...`) of
every method the `mu-bench` distribution registers (discovered through the entry
points, so a new built-in is included without editing a list) on `digits-class3` and
`digits-random10` with the scenario's default seeds (8: forget quality compares 8
unlearned models with 8 gold models), each with its digits preset and the scenario's
budget, into a store of its own (`mu-bench-runs/reference/`, emptied first, so the
table shows exactly one run per method). It writes the leaderboard as Markdown, the
same tables as `mu-bench leaderboard --markdown`, to `docs/leaderboard.md`, and copies
them into the README between the two marker comments. About 10 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from mu_bench import __version__, registry
from mu_bench.errors import UsageError
from mu_bench.isolation.executor import Executor, close, make_executor
from mu_bench.submission.grid import Cell, GridObserver, GridSpec, MethodSet, plan_grid, run_grid

from . import ranking, render

DISTRIBUTION = "mu-bench"
SCENARIOS = ("digits-class3", "digits-random10")
START = "<!-- reference-leaderboard:start -->"
END = "<!-- reference-leaderboard:end -->"


def builtin_methods() -> list[str]:
    """Names of every method registered by the mu-bench distribution itself."""
    return [n for n, e in registry.discover().items() if e.distribution == DISTRIBUTION]


class _Lines(GridObserver):
    def cell_done(self, cell: Cell) -> None:
        status = cell.report.status if cell.report else cell.state
        print(f"{cell.scenario} {cell.label}: {status}", file=sys.stderr, flush=True)


def submit_all(
    uri: str,
    seeds: int | None,
    device: str,
    methods: list[str],
    executor: Executor | None = None,
) -> None:
    """Every method on both scenarios, as one grid (`executor`: default the local pool)."""
    spec = GridSpec(tuple(MethodSet(m) for m in methods), SCENARIOS, seeds)
    cells = plan_grid(spec, device)
    executor = executor or make_executor(None, None, device)
    run_grid(cells, uri, device, executor, figures=False, observer=_Lines())


def document(uri: str, seeds: int | None, device: str) -> str:
    """The Markdown block: how it was made, then one table per scenario."""
    tables = {n: ranking.table(ranking.load(uri, n)) for n in SCENARIOS}
    how = (
        f"mu-bench {__version__}, torch {torch.__version__}, device {device}, "
        f"{seeds or 'the scenario default of 8'} seeds per method, each method's digits "
        "preset, the scenario's budget. Regenerate with `make leaderboard`."
    )
    return f"{how}\n\n{render.markdown_boards(tables).rstrip()}\n"


def splice(text: str, block: str) -> str:
    """`text` with everything between the START and END markers replaced by `block`."""
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise UsageError(f"the README needs the markers {START} and {END}, in that order")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}{END}{tail}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mu_bench.leaderboard.reference")
    parser.add_argument("--store-dir", type=Path, default=Path("mu-bench-runs/reference"))
    parser.add_argument("--seeds", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=None, help="default: one per core")
    parser.add_argument("--executor", default=None, help="local or dask://HOST:PORT")
    parser.add_argument("--out", type=Path, default=Path("docs/leaderboard.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)

    folder = args.store_dir.absolute()
    # The store is this command's own: empty it so each method has exactly one run.
    (folder / "mlflow.db").unlink(missing_ok=True)
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"

    executor = make_executor(args.executor, args.jobs, args.device)
    try:
        submit_all(uri, args.seeds, args.device, builtin_methods(), executor)
    finally:
        close(executor)
    block = document(uri, args.seeds, args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Reference leaderboard\n\n{block}")
    args.readme.write_text(splice(args.readme.read_text(), block))
    print(f"wrote {args.out} and the leaderboard section of {args.readme}", file=sys.stderr)


if __name__ == "__main__":
    main()
