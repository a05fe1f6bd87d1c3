"""`mu-bench download`: fetch a dataset's files into the data root (needs internet)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UsageError
from .app import DataRootOpt, app, say, use_data_root


@app.command()
def download(
    dataset: Annotated[str, typer.Argument(help="Dataset name, e.g. cifar10 or cifar100.")],
    data_root: DataRootOpt = None,
) -> None:
    """Fetch a dataset's files into the data root (needs internet; torchvision's layout)."""
    from ..data.registry import DATASETS
    from ..errors import did_you_mean
    from ..paths import data_root as resolve_root

    fetchable = sorted(n for n, b in DATASETS.items() if b.download is not None)
    if dataset not in DATASETS:
        raise UsageError(
            f"unknown dataset '{dataset}'.{did_you_mean(dataset, list(DATASETS))} "
            f"Datasets to download: {', '.join(fetchable)}"
        )
    builder = DATASETS[dataset]
    if builder.download is None:
        say(f"{dataset} needs no download: {builder.summary}")
        return
    use_data_root(data_root)
    root = resolve_root()
    say(f"downloading {dataset} into {root}")
    builder.download(root)
    say(f"{dataset} is in {root}; use --data-root {root} or MU_BENCH_DATA={root}")
