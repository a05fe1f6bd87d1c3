"""The `mu-bench` command line: one command per verb.

Exit codes: 0 the harness ran (even if a seed failed; the statuses say so), 1 a check
failed, 2 bad usage or input (the message names the valid choices), 3 internal error.
Status lines go to stderr; `--json` prints exactly one JSON document on stdout. Heavy
imports (torch, mlflow) happen inside the commands that need them, so `mu-bench
methods` and `mu-bench scenarios` answer in well under a second. `--data-root` (or
`$MU_BENCH_DATA`) says where downloaded datasets are; `mu-bench download` fetches them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import replace
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import MuBenchError, UsageError
from .scenario import DEFAULT_SCENARIO

app = typer.Typer(
    help="mu-bench: benchmark and leaderboard for machine unlearning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
err = Console(stderr=True, highlight=False)
# Tables keep their columns when piped (CI logs, `make run | tee`): 160 wide off a terminal.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

# typer needs Optional[...] (not X | None) to run on Python 3.10.
ScenarioOpt = Annotated[
    str, typer.Option("--scenario", "-s", help="Built-in scenario name or path to a .toml file.")
]
TrackingOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else SQLite in ./mu-bench-runs).",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
DataRootOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--data-root",
        help="Folder of downloaded datasets (default: $MU_BENCH_DATA, else ./mu-bench-runs/data).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")]
# A method's seeds and hyperparameters: `submit`, and `prepare --method`.
SeedsOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--seeds", "-n", help="Number of seeds (default: the scenario's)."),
]
ParamOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--param", "-p", help="Hyperparameter name=value (repeatable)."),
]
NoPresetOpt = Annotated[
    bool, typer.Option("--no-preset", help="Use the paper defaults, not the dataset preset.")
]


def _emit_json(doc) -> None:
    sys.stdout.write(json.dumps(doc, indent=1, default=str) + "\n")


def _say(message: str) -> None:
    err.print(message, markup=False, style="dim")


def _use_data_root(data_root: str | None) -> None:
    """`--data-root` wins over `$MU_BENCH_DATA` for this process (`paths.data_root`)."""
    if data_root:
        from pathlib import Path

        from .paths import DATA_ENV

        os.environ[DATA_ENV] = str(Path(data_root).expanduser().absolute())


@app.command()
def submit(
    method: Annotated[str, typer.Argument(help="Method name (see `mu-bench methods`).")],
    scenario: ScenarioOpt = DEFAULT_SCENARIO,
    seeds: SeedsOpt = None,
    budget: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--budget", "-b", help="Seconds per unlearn() call, or N% of retrain time."),
    ] = None,
    param: ParamOpt = None,
    no_preset: NoPresetOpt = False,
    tracking_uri: TrackingOpt = None,
    device: DeviceOpt = "auto",
    data_root: DataRootOpt = None,
    keep_work: Annotated[bool, typer.Option(help="Keep the workers' scratch folders.")] = False,
    figures: Annotated[
        bool, typer.Option(help="Draw the submission's figures and log them to its run.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Run METHOD on a scenario once per seed, score it, and record it on the leaderboard."""
    import tempfile
    from pathlib import Path

    from mu_bench.leaderboard import store
    from mu_bench.leaderboard.render import report_table

    from .method import parse_params
    from .submit import plan, run

    _use_data_root(data_root)

    sub = plan(method, scenario, seeds, budget, parse_params(param or []), not no_preset)
    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    with tempfile.TemporaryDirectory(prefix="mu-bench-figures-") as tmp:
        folder = Path(tmp) if figures else None
        report, _ = run(
            sub,
            device,
            on_event=_say,
            # MLflow's start-up (seconds) overlaps the seeds; not before the data is
            # known to exist, so that bad input writes no store.
            on_prepared=lambda: store.open_in_background(uri),
            keep_work=keep_work,
            figures=folder,
        )
        clock = time.perf_counter()
        drawn = {p.stem: p for p in sorted(folder.glob("*.png"))} if folder else {}
        run_id = store.record(report, uri, figures=drawn)
    timings = {**report.timings, "record_seconds": time.perf_counter() - clock}
    report = replace(report, run_id=run_id, timings=timings)
    if as_json:
        _emit_json(report.to_json())
    else:
        out.print(report_table(report))
        _say(f"recorded run {report.run_id} in {uri}")


@app.command()
def methods(
    load: Annotated[
        bool, typer.Option("--load", help="Import each plugin to check it and show its fields.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List installed methods (from package metadata; nothing is imported without --load)."""
    from . import registry
    from .method import Method

    rows = []
    for name, entry in registry.discover().items():
        row = {
            "name": name,
            "summary": entry.summary(),
            "distribution": entry.distribution,
            "version": entry.version,
            "entry_point": entry.value,
        }
        if load:
            try:
                cls = entry.load()
                if not (isinstance(cls, type) and issubclass(cls, Method)):
                    raise UsageError(f"{entry.value} is not a mu_bench Method subclass")
                row.update(reads=cls.reads, scope=cls.scope, fields=cls.describe_fields())
            except MuBenchError as exc:
                row["warning"] = str(exc)
                _say(f"warning: {exc}")
        rows.append(row)
    if as_json:
        _emit_json(rows)
        return
    table = Table(title="mu-bench methods", title_justify="left")
    for col in ("name", "summary", "distribution", "version") + (
        ("reads", "fields") if load else ()
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        cells = [r["name"], r["summary"], r["distribution"], r["version"]]
        if load:
            cells += [r.get("reads", "-"), r.get("fields", r.get("warning", ""))]
        table.add_row(*cells)
    out.print(table)


@app.command()
def scenarios(as_json: JsonOpt = False) -> None:
    """List the built-in scenarios with a one-line description."""
    from .scenario import builtin_names, load

    rows = []
    for name in builtin_names():
        s = load(name)
        forget = (
            f"class {list(s.forget.classes)}"
            if s.forget.rule == "class"
            else f"random {s.forget.fraction or s.forget.count}"
        )
        rows.append(
            {
                "name": name,
                "summary": s.summary,
                "dataset": s.data.dataset,
                "arch": s.model.arch,
                "forget": forget,
                "gold_seeds": s.gold.seeds,
                "gold_ceiling": s.gold.ceiling,
                "lira_in_models": s.lira.in_models,
                "budget_seconds": s.budget.seconds,
                "provenance": s.provenance,
                "default": name == DEFAULT_SCENARIO,
            }
        )
    if as_json:
        _emit_json(rows)
        return
    table = Table(title="mu-bench scenarios", title_justify="left")
    for col in ("name", "summary", "data / model", "forget", "gold", "budget"):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "")
        table.add_row(
            name,
            r["summary"],
            f"{r['dataset']} / {r['arch']}",
            r["forget"],
            str(r["gold_seeds"]),
            f"{r['budget_seconds']:g} s",
        )
    out.print(table)
    # Provenance is prose (whose split, whose recipe): a wrapped paragraph per scenario
    # reads better than a narrow column.
    from rich.text import Text

    out.print("\nprovenance", style="bold")
    for r in rows:
        out.print(Text.assemble((r["name"], "bold"), ": ", r["provenance"] or "-"))


@app.command()
def prepare(
    scenario: Annotated[
        str, typer.Argument(help="Scenario name or .toml path.")
    ] = DEFAULT_SCENARIO,
    device: DeviceOpt = "auto",
    data_root: DataRootOpt = None,
    method: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--method", "-m", help="Also run this method's training stage (SISA)."),
    ] = None,
    seeds: SeedsOpt = None,
    param: ParamOpt = None,
    no_preset: NoPresetOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train (or load from the cache) the original and gold models of a scenario, and with
    --method that method's training stage."""
    from .artifacts import prepare as do_prepare
    from .scenario import load

    _use_data_root(data_root)
    s = load(scenario)
    sub = None
    if method is not None:
        from .method import has_training_stage, parse_params
        from .submit import plan

        sub = plan(method, s, seeds, None, parse_params(param or []), not no_preset)
        if not has_training_stage(type(sub.method)):
            raise UsageError(
                f"method '{method}' has no training stage (it does not implement train()); "
                "--method takes a method that does, such as sisa"
            )
    elif seeds is not None or param or no_preset:
        raise UsageError("--seeds, --param and --no-preset go with --method")

    def on_model(m) -> None:
        how = "cached" if m.cache_hit else f"trained in {m.train_seconds:.2f} s"
        _say(f"{m.role} {m.index}: {how}")

    art = do_prepare(s, device, on_model=on_model)
    from .evaluation import reference

    ref = reference(art)
    doc = {
        "scenario": s.name,
        "scenario_hash": s.content_hash,
        "train_size": len(art.data.y_train),
        "test_size": len(art.data.y_test),
        "forget_size": len(art.split.forget_idx),
        "gold_models": len(art.gold),
        "holdout_gold_models": len(art.gold_holdout),
        "lira_in_models": len(art.in_models),
        "retrain_seconds": art.retrain_seconds,
        "cache_hits": sum(
            m.cache_hit for m in (art.original, *art.gold, *art.gold_holdout, *art.in_models)
        ),
        "original": ref["original"],
        "gold": ref["gold"],
    }
    if sub is not None:
        doc["method_training"] = _prepare_training(sub, art, device)
    if as_json:
        _emit_json(doc)
    else:
        out.print(doc)


def _prepare_training(sub, art, device: str) -> list[dict]:
    """Run (or load) each seed's training stage; one summary per seed."""
    import shutil
    import uuid

    from . import method_training
    from .device import resolve_device
    from .paths import work_root

    work = work_root() / f"prepare-{sub.entry.name}-{uuid.uuid4().hex[:8]}"
    try:
        stages = method_training.train_seeds(
            sub, art, resolve_device(device), range(sub.seeds), work, on_event=_say
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for seed, stage in stages.items():
        if isinstance(stage, method_training.TrainedMethod):
            rows.append(
                {
                    "seed": seed,
                    "status": "ok",
                    "cache_hit": stage.cache_hit,
                    **method_training.trained_metrics(stage, art),
                }
            )
        else:
            rows.append({"seed": seed, "status": stage.status, "error": stage.error})
    return rows


@app.command()
def download(
    dataset: Annotated[str, typer.Argument(help="Dataset name, e.g. cifar10 or cifar100.")],
    data_root: DataRootOpt = None,
) -> None:
    """Fetch a dataset's files into the data root (needs internet; torchvision's layout)."""
    from .datasets import DATASETS
    from .errors import did_you_mean
    from .paths import data_root as resolve_root

    fetchable = sorted(n for n, b in DATASETS.items() if b.download is not None)
    if dataset not in DATASETS:
        raise UsageError(
            f"unknown dataset '{dataset}'.{did_you_mean(dataset, list(DATASETS))} "
            f"Datasets to download: {', '.join(fetchable)}"
        )
    builder = DATASETS[dataset]
    if builder.download is None:
        _say(f"{dataset} needs no download: {builder.summary}")
        return
    _use_data_root(data_root)
    root = resolve_root()
    _say(f"downloading {dataset} into {root}")
    builder.download(root)
    _say(f"{dataset} is in {root}; use --data-root {root} or MU_BENCH_DATA={root}")


@app.command()
def leaderboard(
    scenario: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="Scenario (default: every scenario with submissions)."),
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Every submission, not only the latest per method.")
    ] = False,
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown.")] = False,
    plot: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--plot",
            help="Also draw score (or avg_gap) against unlearn seconds, Pareto front marked, "
            "into this image file (.png, .pdf or .svg); needs one SCENARIO.",
        ),
    ] = None,
) -> None:
    """Print the ranked leaderboard of a scenario (or of every scenario)."""
    from mu_bench.leaderboard import ranking, render, store

    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    db = store.sqlite_path(uri)
    known = ranking.scenarios(uri) if db is None or db.exists() else []
    if scenario is not None and scenario not in known:
        from .errors import did_you_mean

        raise UsageError(
            f"no submissions for scenario '{scenario}' in {uri}.{did_you_mean(scenario, known)} "
            f"Scenarios with submissions: {', '.join(known) or '(none)'}"
        )
    names = [scenario] if scenario else known
    if plot is not None:
        from pathlib import Path

        if len(names) != 1:
            raise UsageError(
                "--plot draws one scenario: give SCENARIO "
                f"(scenarios with submissions: {', '.join(known) or '(none)'})"
            )
        if Path(plot).suffix.lower() not in (".png", ".pdf", ".svg"):
            raise UsageError(f"--plot {plot}: give a file name ending in .png, .pdf or .svg")
        if not Path(plot).absolute().parent.is_dir():
            raise UsageError(f"--plot {plot}: folder {Path(plot).absolute().parent} does not exist")
    tables = {n: ranking.table(ranking.load(uri, n), latest_only=not all_runs) for n in names}
    if plot is not None:
        from mu_bench.leaderboard.figures import pareto_plot

        (name,) = names
        metric = ranking.rank_metric(tables[name])
        pareto_plot(tables[name], metric, Path(plot), f"leaderboard: {name}")
        _say(f"plotted {metric} against unlearn seconds into {plot}")
    if as_json:
        _emit_json({n: render.records(t) for n, t in tables.items()})
    elif as_csv:
        import pandas as pd

        frames = [t.assign(scenario=n) for n, t in tables.items()]
        sys.stdout.write(pd.concat(frames).to_csv(index=False) if frames else "")
    elif as_markdown:
        sys.stdout.write(render.markdown_boards(tables))
    else:
        if not tables:
            _say(f"no submissions yet in {uri}; try `mu-bench submit finetune`")
        for n, t in tables.items():
            out.print(render.rich_table(f"leaderboard: {n}", render.leaderboard_rows(t)))


@app.command()
def ui(
    tracking_uri: TrackingOpt = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Start the MLflow UI on 127.0.0.1 over the leaderboard store."""
    from mu_bench.leaderboard import store

    uri = store.resolve_uri(tracking_uri)
    store.check_uri(uri)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    _say(f"MLflow UI on http://127.0.0.1:{port} over {uri}")
    os.execv(sys.executable, cmd)


def main() -> None:
    import logging

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app()  # standalone: click/typer handle usage errors (exit 2) and sys.exit themselves
    except MuBenchError as exc:
        err.print(f"error: {exc}", markup=False, style="bold red", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        err.print("internal error (please report it):", style="bold red")
        err.print(traceback.format_exc(), markup=False)
        sys.exit(3)


@app.command()
def server(
    backend_store_uri: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Database of the board: sqlite:///PATH.db or postgresql://USER@HOST:PORT/DB "
            "(default: SQLite in $MU_BENCH_HOME/server/).",
        ),
    ] = None,
    postgres_dir: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Initialise (first time) and start a private PostgreSQL in this folder, on "
            "127.0.0.1, as the board's database.",
        ),
    ] = None,
    artifacts_destination: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Artifact root: a folder or a URI (default: beside the database)."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 for every interface.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server worker processes (each about 0.4 GB).")
    ] = 1,
    allowed_hosts: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Host headers to accept, comma-separated (MLflow's --allowed-hosts)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start an MLflow tracking server for a team and print the URI `--tracking-uri` takes."""
    from mu_bench.leaderboard import server as srv

    request = srv.plan(
        backend_store_uri=backend_store_uri,
        postgres_dir=postgres_dir,
        artifacts_destination=artifacts_destination,
        host=host,
        port=port,
        workers=workers,
        allowed_hosts=allowed_hosts,
    )

    def ready(info: dict) -> None:
        if as_json:
            _emit_json(info)
        else:
            sys.stdout.write(info["tracking_uri"] + "\n")
        sys.stdout.flush()

    srv.serve(request, on_ready=ready, say=_say)
