"""MLflow as the leaderboard store, with the tracking URI always set explicitly.

The embedded default is a SQLite store at `$MU_BENCH_HOME/mlflow.db` (artifacts beside
it); `--tracking-uri` or `MLFLOW_TRACKING_URI` points at a shared MLflow server. Every
write goes through an explicit `MlflowClient` (no global state) and, for SQLite, under a
file lock, so concurrent submits into one store both land.

A submission may carry an idempotency key (`submission_key`, a tag on its parent run):
`find_submission` tells whether that exact request is already on the board, so that a
`grid` killed half-way and started again skips what landed and runs the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mu_bench.errors import UsageError
from mu_bench.evaluation.catalogue import stored
from mu_bench.paths import home
from mu_bench.submission.report import Report

from .labels import pairs, run_name, seed_run_name

EXPERIMENT_PREFIX = "mu-bench/"
VALID_FORMS = (
    "sqlite:///ABSOLUTE/PATH.db, sqlite:///RELATIVE/PATH.db, http(s)://HOST:PORT "
    "(an MLflow server), or a database URI MLflow supports (postgresql://, mysql://)"
)


def experiment_name(scenario: str) -> str:
    return EXPERIMENT_PREFIX + scenario


def default_uri() -> str:
    return f"sqlite:///{home() / 'mlflow.db'}"


def resolve_uri(uri: str | None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri()


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :]).absolute()


def check_uri(uri: str) -> None:
    """Raise UsageError, writing nothing, when the store at `uri` cannot be used."""
    scheme = urlparse(uri).scheme
    db = sqlite_path(uri)
    if db is not None:
        parent = db.parent
        if uri == default_uri():
            return  # created on first write
        if db.is_dir():
            raise UsageError(f"tracking URI {uri}: {db} is a directory, not a database file")
        if not parent.is_dir():
            raise UsageError(f"tracking URI {uri}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise UsageError(f"tracking URI {uri}: folder {parent} is not writable")
        return
    if scheme in ("http", "https"):
        _probe_server(uri)
        return
    if scheme in ("postgresql", "mysql", "mssql", "databricks") or scheme.startswith(
        ("postgresql+", "mysql+", "mssql+")
    ):
        return
    raise UsageError(f"tracking URI '{uri}' is not usable. Valid forms: {VALID_FORMS}")


def _probe_server(uri: str) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
            if resp.status == 200:
                return
            raise UsageError(f"tracking URI {uri}: server answered HTTP {resp.status} on /health")
    except (urllib.error.URLError, OSError) as exc:
        raise UsageError(
            f"tracking URI {uri}: no MLflow server answers there ({exc}). "
            f"Start one with `mlflow server` or use another URI. Valid forms: {VALID_FORMS}"
        ) from None


def _lock(uri: str):
    db = sqlite_path(uri)
    if db is None:
        return contextlib.nullcontext()
    from filelock import FileLock

    db.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(db) + ".lock")


_CLIENTS: dict[str, Future] = {}
_CLIENTS_LOCK = threading.Lock()


def _open(uri: str):
    """An MlflowClient whose store has started: MLflow's SQLAlchemy store checks and, on
    first use, creates its schema on the first call (about 2.5 s here, imports included),
    under the store's file lock so that two processes never create one schema at once."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    from . import artifacts

    artifacts.register()  # `mu-bench:` artifact locations, relative to a SQLite store

    with _lock(uri):
        c = MlflowClient(tracking_uri=uri)
        c.search_experiments(max_results=1)
    return c


def open_in_background(uri: str) -> None:
    """Start opening the store now, in a daemon thread, so that its start-up overlaps the
    submission's compute (the harness mostly waits on worker processes meanwhile);
    `client(uri)` then returns it, or raises what opening it raised."""
    with _CLIENTS_LOCK:
        if uri in _CLIENTS:
            return
        future: Future = Future()
        _CLIENTS[uri] = future

    def work() -> None:
        try:
            future.set_result(_open(uri))
        except BaseException as exc:  # handed to whoever asks for the client
            future.set_exception(exc)

    threading.Thread(target=work, name="mu-bench-store", daemon=True).start()


def client(uri: str):
    """The process's client for `uri`, opened once (see `open_in_background`)."""
    with _CLIENTS_LOCK:
        future = _CLIENTS.get(uri)
    if future is None:
        c = _open(uri)
        with _CLIENTS_LOCK:
            future = _CLIENTS.setdefault(uri, Future())
            if not future.done():
                future.set_result(c)
    return future.result()


# MLflow's experiment kind for model training: the UI opens such an experiment on its runs
# table, not on the GenAI "Overview" page.
KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
# A saved view of the runs table (MLflow's "share view" state, an experiment tag):
# submissions only, ranked, the headline metrics as columns. `ui_link` opens it.
VIEW_KEY = "mu-bench-board"
VIEW_TAG = "mlflow.sharedViewState." + VIEW_KEY
SUBMISSIONS = "tags.mu_bench.kind = 'submission'"
# The runs table's columns, after the ranking metric.
HEADLINE = (
    "forget_quality",
    "forget_quality_norm",
    "forget_acc",
    "retain_acc",
    "test_acc",
    "mia_efficacy",
    "unlearn_seconds",
)


RUN_NAME_COLUMN = "attributes.`Run Name`"


def _column(metric: str) -> str:
    return f"metrics.`{stored(metric)}`"


def view_state(rank_by: str) -> str:
    """The board's view of the runs table, ranked by `rank_by` (as MLflow's UI reads a
    shared view: its search facets and UI state, as JSON)."""
    from mu_bench.evaluation.catalogue import CATALOGUE

    ascending = CATALOGUE[rank_by].direction == "lower"
    columns = [_column(m) for m in dict.fromkeys((rank_by, *HEADLINE))]
    state = {
        "searchFilter": SUBMISSIONS,
        "orderByKey": _column(rank_by),
        "orderByAsc": ascending,
        "selectedColumns": columns,
        # The run name first, then the ranking metric and the headline ones, wide enough
        # for their grouped names (MLflow's table ids for its own columns).
        "columnOrder": [RUN_NAME_COLUMN, *columns],
        "columnWidths": {
            RUN_NAME_COLUMN: 260,
            **{_column(m): 40 + 7 * len(stored(m)) for m in (rank_by, *HEADLINE)},
        },
        "runsHiddenMode": "SHOW_ALL",
    }
    return json.dumps(state, separators=(",", ":"))


def rank_metric_of(metrics: Mapping[str, float]) -> str:
    """The metric a submission's board is ranked by (see `ranking.rank_metric`)."""
    from mu_bench.evaluation.catalogue import FALLBACK, RANK_BY

    return next((m for m in RANK_BY if m in metrics), FALLBACK)


def publish_view(c, exp, rank_by: str, *, downgrade: bool = True) -> None:
    """Mark `exp` (an MLflow Experiment) as model training and save the board's view on
    it, where either is missing or out of date. Without `downgrade`, a view ranked by a
    metric earlier in `RANK_BY` (score_norm, score) than `rank_by` is kept: a failed or
    one-seed submission does not re-rank a board by its fallback."""
    from mu_bench.evaluation.catalogue import FALLBACK, RANK_BY

    tags = dict(exp.tags or {})
    order = [*RANK_BY, FALLBACK]
    if not downgrade and VIEW_TAG in tags:
        current = json.loads(tags[VIEW_TAG]).get("orderByKey", "")
        better = [m for m in order if _column(m) == current]
        if better and order.index(better[0]) < order.index(rank_by):
            rank_by = better[0]
    wanted = {KIND_TAG: MODEL_TRAINING, VIEW_TAG: view_state(rank_by)}
    for key, value in wanted.items():
        if tags.get(key) != value:
            c.set_experiment_tag(exp.experiment_id, key, value)


def _experiment_id(c, uri: str, scenario: str) -> str:
    name = experiment_name(scenario)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # On SQLite, artifacts live beside the database under a location relative to it, so
    # that the store's folder can be moved (`artifacts.py`).
    from mlflow.exceptions import MlflowException

    from . import artifacts

    location = artifacts.location(f"artifacts/{scenario}") if sqlite_path(uri) else None

    try:
        return c.create_experiment(
            name,
            artifact_location=location,
            tags={"mu_bench.scenario": scenario, KIND_TAG: MODEL_TRAINING},
        )
    except MlflowException as exc:
        # Another process created it since we looked: only SQLite has our file lock; a
        # server or database store is shared by submits that do not share a lock.
        exp = c.get_experiment_by_name(name)
        if exc.error_code != "RESOURCE_ALREADY_EXISTS" or exp is None:
            raise
        return exp.experiment_id


def _finite_metrics(values: dict[str, float], step_time: int, step: int = 0):
    """MLflow metrics under their grouped names (`catalogue.stored`), finite ones only."""
    from mlflow.entities import Metric

    return [
        Metric(stored(k), float(v), step_time, step)
        for k, v in values.items()
        if v is not None and math.isfinite(float(v))
    ]


def _source_tags(method: str) -> dict[str, str]:
    """MLflow's standard tags for where a run came from: the user, the method's source
    file, and its git commit when that file sits in a git checkout."""
    import getpass
    import importlib.util
    import subprocess

    from mlflow.utils.mlflow_tags import (
        MLFLOW_GIT_COMMIT,
        MLFLOW_SOURCE_NAME,
        MLFLOW_SOURCE_TYPE,
        MLFLOW_USER,
    )

    tags = {MLFLOW_SOURCE_TYPE: "LOCAL"}
    with contextlib.suppress(Exception):
        tags[MLFLOW_USER] = getpass.getuser()
    try:
        from mu_bench import registry

        entry = registry.get(method)
        tags[MLFLOW_SOURCE_NAME] = entry.value
        spec = importlib.util.find_spec(entry.module)
        origin = spec.origin if spec else None
    except Exception:  # an uninstalled plugin: no source to name
        return tags
    if origin:
        tags[MLFLOW_SOURCE_NAME] = origin
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                ["git", "-C", str(Path(origin).parent), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            if done.returncode == 0 and done.stdout.strip():
                tags[MLFLOW_GIT_COMMIT] = done.stdout.strip()
    return tags


def _note(report: Report) -> str:
    """The run's description (MLflow's note): the notes, and the parameters used."""
    lines = [f"- {n}" for n in report.notes]
    preset = f" (preset `{report.preset}`)" if report.preset else ""
    params = pairs(report.params) or "none"
    lines.append(f"- parameters{preset}: `{params}`")
    return "\n".join(lines)


def _scenario_input(report: Report):
    """The scenario as the run's logged input (MLflow's datasets column)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    dataset = Dataset(
        name=report.scenario,
        digest=report.scenario_hash[:16],
        source_type="mu-bench-scenario",
        source=json.dumps({"scenario": report.scenario, "file": "scenario.toml"}),
        profile=json.dumps({"scenario_hash": report.scenario_hash}),
    )
    return DatasetInput(dataset, [InputTag("mlflow.data.context", "evaluation")])


def _reference_runs(c, exp_id: str, report: Report, now: int) -> None:
    """The scenario's constant reference values, logged once per scenario content on the
    experiment (two runs: the gold models' mean, the original model), not on every
    submission."""
    from mlflow.entities import RunTag

    found = c.search_runs(
        [exp_id],
        filter_string=(
            "tags.mu_bench.kind = 'reference' and "
            f"tags.mu_bench.scenario_hash = '{report.scenario_hash}'"
        ),
        max_results=10,
    )
    if found:
        return
    gold = dict(report.reference.get("gold", {}))
    gold.update({f"{k}_std": v for k, v in report.reference.get("gold_std", {}).items()})
    for role, values, name in (
        ("gold", gold, "reference · gold models (retrain), mean"),
        ("original", report.reference.get("original", {}), "reference · original model"),
    ):
        if not values:
            continue
        run = c.create_run(exp_id, run_name=name)
        tags = [
            RunTag("mu_bench.kind", "reference"),
            RunTag("mu_bench.role", role),
            RunTag("mu_bench.scenario", report.scenario),
            RunTag("mu_bench.scenario_hash", report.scenario_hash),
        ]
        c.log_batch(run.info.run_id, metrics=_finite_metrics(values, now), tags=tags)
        c.set_terminated(run.info.run_id, "FINISHED")


def _log_figures(c, run_id: str, figures: dict[str, Path]) -> None:
    """Each figure as a file under `figures/`, and as an image keyed by its name, which
    MLflow's charts view compares across runs."""
    for name, path in figures.items():
        c.log_artifact(run_id, str(path), artifact_path="figures")
        with contextlib.suppress(ImportError):
            from PIL import Image

            with Image.open(path) as image:
                c.log_image(run_id, image.convert("RGB"), key=name, synchronous=True)


def _request_metrics(report: Report, step_time: int) -> list:
    """A deletion stream's per-request metrics: `request.<name>` at step = request index
    (a metric history MLflow charts against the step)."""
    from mu_bench.evaluation.catalogue import REQUEST_PREFIX

    rows = []
    for entry in report.requests:
        values = {f"{REQUEST_PREFIX}{k}": v for k, v in entry["metrics"].items()}
        values[f"{REQUEST_PREFIX}size"] = entry["size"]
        values[f"{REQUEST_PREFIX}deleted"] = entry["deleted"]
        rows.extend(_finite_metrics(values, step_time, int(entry["request"])))
    return rows


def _set_metrics(report: Report, step_time: int) -> list:
    """A family's per-set metrics: `set.<name>` at step = the set's draw (as a stream's
    `request.<name>` at step = request)."""
    from mu_bench.evaluation.catalogue import SET_PREFIX

    rows = []
    for entry in report.forget_sets:
        values = {f"{SET_PREFIX}{k}": v for k, v in entry["metrics"].items()}
        values[f"{SET_PREFIX}size"] = entry["size"]
        rows.extend(_finite_metrics(values, step_time, int(entry["draw"])))
    return rows


def provenance_tag(provenance: dict[str, Any]) -> str:
    """A preset's provenance as the board shows it: the study, its trials and objective,
    the tuning forget set (the whole document is in `report.json`)."""
    keys = ("source", "name", "study", "scenario", "trials", "trials_ok", "objective")
    short = {k: provenance[k] for k in keys if k in provenance}
    if isinstance(provenance.get("tuning_set"), dict):
        short["tuning_set"] = provenance["tuning_set"].get("forget")
    return json.dumps(short, sort_keys=True, default=str)[:5000]


def record(
    report: Report,
    uri: str,
    figures: dict[str, Path] | Callable[[], dict[str, Path]] | None = None,
    key: str | None = None,
) -> Report:
    """Log a submission: a parent run, one nested run per seed, `report.json` and the
    figures. The run is created first, so the logged report carries its run id and is
    exactly the document returned (what `--json` prints). `key` (see `submission_key`)
    is tagged on the parent run for `find_submission`.

    `figures` may be a function that returns them: it is called once everything else is
    logged, outside the store's lock, so that the figures can be drawn meanwhile (the
    store writer's `mu-bench submit`). When it raises, the record is deleted (MLflow's
    soft delete: off the board) and the error raised: a record is complete or absent.

    The run is named by its method, overrides and seeds (`finetune lr=0.05 · 8 seeds`),
    carries MLflow's standard tags (source, user, git commit, the notes as its
    description), the scenario file as an artifact and a logged input, metrics under
    their groups (`catalogue.stored`); the scenario's reference values are logged once
    per experiment (`_reference_runs`), and the experiment keeps the board's view."""
    import time
    from dataclasses import replace

    from mlflow.entities import Param, RunTag
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

    now = int(time.time() * 1000)
    c = client(uri)  # opened under the lock itself
    sets = len(report.forget_sets)
    name = run_name(report.method, report.params, report.overrides, len(report.seeds), sets)
    source = _source_tags(report.method)
    # MLflow prints "View run ... at: URL" on stdout for a server store; stdout belongs
    # to `--json`'s one document.
    with _lock(uri), contextlib.redirect_stdout(sys.stderr):
        exp_id = _experiment_id(c, uri, report.scenario)
        publish_view(c, c.get_experiment(exp_id), rank_metric_of(report.metrics), downgrade=False)
        common = {
            "mu_bench.method": report.method,
            "mu_bench.scenario": report.scenario,
            "mu_bench.scenario_hash": report.scenario_hash,
            "mu_bench.params": json.dumps(report.params, sort_keys=True),
        }
        tags = {
            **source,
            **common,
            "mlflow.runName": name,
            MLFLOW_RUN_NOTE: _note(report),
            "mu_bench.kind": "submission",
            "mu_bench.distribution": report.distribution,
            "mu_bench.version": report.version,
            "mu_bench.status": report.status,
            "mu_bench.seeds_ok": f"{report.seeds_ok}/{len(report.seeds)}",
            "mu_bench.torch": report.torch_version,
            "mu_bench.device": report.device,
            "mu_bench.harness_version": report.harness_version,
            "mu_bench.reads": report.reads,
            "mu_bench.in_scope": str(report.in_scope).lower(),
            "mu_bench.preset": report.preset or "",
            "mu_bench.overrides": json.dumps(report.overrides, sort_keys=True),
            "mu_bench.params": json.dumps(report.params, sort_keys=True),
            "mu_bench.sandbox": report.sandbox,
            "mu_bench.params_source": report.params_source,
        }
        if report.params_provenance:
            tags["mu_bench.params_provenance"] = provenance_tag(report.params_provenance)
        if key is not None:
            tags[KEY_TAG] = _checked_key(key)
        parent = c.create_run(exp_id, tags=tags, run_name=name)
        run_id = parent.info.run_id
        report = replace(report, run_id=run_id)
        params = [Param(k, str(v)[:6000]) for k, v in report.params.items()]
        run_params = [
            *params,
            Param("budget_seconds", str(report.budget_seconds)),
            Param("seeds", str(len(report.seeds))),
        ]
        c.log_batch(run_id, metrics=_finite_metrics(report.metrics, now), params=run_params)
        history = _request_metrics(report, now) + _set_metrics(report, now)
        for start in range(0, len(history), 1000):  # MLflow's limit per batch
            c.log_batch(run_id, metrics=history[start : start + 1000])
        c.log_text(run_id, json.dumps(report.to_json(), indent=1, default=str), "report.json")
        if report.scenario_toml:
            c.log_text(run_id, report.scenario_toml, "scenario.toml")
        c.log_inputs(run_id, datasets=[_scenario_input(report)])
        for s in report.seeds:
            child_tags = [
                RunTag("mlflow.parentRunId", run_id),
                RunTag("mu_bench.kind", "seed"),
                RunTag("mu_bench.status", s.status),
                RunTag("mu_bench.seed", str(s.seed)),
                *(RunTag(k, v) for k, v in common.items()),
                *(RunTag(k, v) for k, v in source.items()),
            ]
            if s.error:
                child_tags.append(RunTag("mu_bench.error", s.error[:4000]))
            if s.forget_set is not None:  # a family's seed: the draw of its forget set
                child_tags.append(RunTag("mu_bench.forget_set", str(s.forget_set)))
            child = c.create_run(
                exp_id, run_name=seed_run_name(report.method, s.seed, s.forget_set)
            )
            seed_metrics = dict(s.metrics)
            for k in ("unlearn_seconds", "wall_seconds"):
                if getattr(s, k) is not None:
                    seed_metrics[k] = getattr(s, k)
            c.log_batch(
                child.info.run_id,
                metrics=_finite_metrics(seed_metrics, now),
                params=params,
                tags=child_tags,
            )
            if s.traceback or s.error:
                c.log_text(child.info.run_id, (s.traceback or s.error), "error.txt")
            c.set_terminated(child.info.run_id, "FINISHED" if s.status == "ok" else "FAILED")
        _reference_runs(c, exp_id, report, now)
    try:
        drawn = figures() if callable(figures) else figures or {}
    except BaseException:
        with _lock(uri):
            _delete_record(c, exp_id, run_id)
        raise
    with _lock(uri), contextlib.redirect_stdout(sys.stderr):
        _log_figures(c, run_id, drawn)
        c.set_terminated(run_id, "FINISHED" if report.seeds_ok else "FAILED")
    return report


# ------------------------------------------------------------------- store-wide settings

# Settings that bind every submit into a store live as tags of one experiment that is
# not a board (its name lacks `EXPERIMENT_PREFIX`). `mu-bench server --require-sandbox`
# sets `REQUIRE_SANDBOX`; a submit into that store then refuses to run unsandboxed.
SETTINGS_EXPERIMENT = "mu-bench-settings"
REQUIRE_SANDBOX = "mu_bench.require_sandbox"


def settings(uri: str) -> dict[str, str]:
    """The store's settings ({} when it has none, or does not exist yet)."""
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        return {}
    exp = client(uri).get_experiment_by_name(SETTINGS_EXPERIMENT)
    return dict(exp.tags) if exp is not None else {}


def set_setting(uri: str, key: str, value: str) -> None:
    """Set one store-wide setting (creating the settings experiment when needed)."""
    from mlflow.exceptions import MlflowException

    c = client(uri)
    with _lock(uri):
        exp = c.get_experiment_by_name(SETTINGS_EXPERIMENT)
        if exp is None:
            try:
                exp_id = c.create_experiment(SETTINGS_EXPERIMENT)
            except MlflowException:  # created meanwhile by another process
                exp_id = c.get_experiment_by_name(SETTINGS_EXPERIMENT).experiment_id
        else:
            exp_id = exp.experiment_id
        c.set_experiment_tag(exp_id, key, value)


def requires_sandbox(uri: str, read: Callable[[str], dict[str, str]] | None = None) -> bool:
    """Whether the store at `uri` requires sandboxed submits; `read` reads its settings
    (default `settings`, here; a harness without MLflow passes the store writer's)."""
    return (read or settings)(uri).get(REQUIRE_SANDBOX, "").lower() == "true"


# --------------------------------------------------------------------------- idempotency

KEY_TAG = "mu_bench.submission_key"
KEY_SCHEMA = 1  # bump when the key's contents change: old keys then never match
_KEY_FORM = re.compile(r"[0-9a-f]{64}")


def submission_key(
    *,
    scenario: str,
    scenario_hash: str,
    method: str,
    distribution: str,
    version: str,
    params: Mapping[str, Any],
    seeds: int | Iterable[int],
    budget: float | str,
    device: str,
    harness_version: str,
) -> str:
    """The idempotency key of a submission request: SHA-256 (hex) of everything that
    decides what lands on the board, computable before anything runs.

    - `scenario`, `scenario_hash`: which board, and the content that changes results
      (data, forget set, model, recipe, gold models, LiRA, root seed); a scenario file
      edited under the same name is a new submission.
    - `method`, `distribution`, `version`: the plugin's code; a new release is new.
    - `params`: the resolved hyperparameters (preset merged, pydantic-dumped), compared as
      canonical JSON, so the order they were given in does not matter. The preset's name
      is left out: its values are in `params`.
    - `seeds`: the seed indices (an int n means 0..n-1): 3 seeds and 8 seeds are two rows.
    - `budget`: as requested, before the retrain time resolves it: seconds (a number) or
      "N%" of the retrain time; the scenario's default is its seconds. A percentage is
      kept as such because the retrain time is measured (it differs between machines).
    - `device`: the kind only (cpu, cuda, mps), not the index: unlearn seconds and the
      budget mean something else on a GPU, while cuda:0 and cuda:1 are interchangeable.
    - `harness_version`: scoring can change between releases.
    Left out: the torch version and the machine (environment, recorded as tags, not part
    of the request), the tracking URI, and whether figures were drawn (no metric changes).
    """
    if isinstance(seeds, int):
        seeds = range(seeds)
    if isinstance(budget, str):
        text = budget.strip()
        budget = f"{float(text[:-1])}%" if text.endswith("%") else float(text)
    else:
        budget = float(budget)
    payload = {
        "schema": KEY_SCHEMA,
        "scenario": scenario,
        "scenario_hash": scenario_hash,
        "method": method,
        "distribution": distribution,
        "version": version,
        "params": dict(params),
        "seeds": sorted(int(s) for s in seeds),
        "budget": budget,
        "device": device.split(":")[0],
        "harness_version": harness_version,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def key_of(sub, device: str) -> str:
    """`submission_key` of a planned submission (`submission.plan.plan`'s result) run on
    `device` ("auto" is resolved here, as the stages resolve it)."""
    from mu_bench import __version__

    if device == "auto":
        from mu_bench.device import resolve_device

        device = resolve_device(device)
    budget = sub.budget if sub.budget is not None else sub.scenario.budget.seconds
    return submission_key(
        scenario=sub.scenario.name,
        scenario_hash=sub.scenario.content_hash,
        method=sub.entry.name,
        distribution=sub.entry.distribution,
        version=sub.entry.version,
        params=sub.params,
        seeds=sub.seeds,
        budget=budget,
        device=device,
        harness_version=__version__,
    )


def _checked_key(key: str) -> str:
    if not _KEY_FORM.fullmatch(key):  # also keeps it safe inside a search filter
        raise ValueError(f"not a submission key (64 lowercase hex digits): {key!r}")
    return key


def _runs_with_key(uri: str, scenario: str, key: str) -> list:
    """Active parent runs tagged with `key` in `scenario`'s experiment, newest first;
    empty (and no store created) where there is none."""
    from mlflow.entities import ViewType

    _checked_key(key)
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        return []
    c = client(uri)
    exp = c.get_experiment_by_name(experiment_name(scenario))
    if exp is None:
        return []
    return list(
        c.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.{KEY_TAG} = '{key}' and tags.mu_bench.kind = 'submission'",
            run_view_type=ViewType.ACTIVE_ONLY,
            order_by=["attributes.start_time DESC"],
            max_results=100,
        )
    )


def find_submission(uri: str, scenario: str, key: str) -> str | None:
    """The run id of the newest submission with idempotency `key` on `scenario`'s board,
    or None. Only a complete record counts (`record` ended it FINISHED, or FAILED when no
    seed succeeded: a failed submission is on the board too); a run still RUNNING is a
    record cut short (its process was killed mid-`record`), see `discard_incomplete`."""
    for run in _runs_with_key(uri, scenario, key):
        if run.info.status in ("FINISHED", "FAILED"):
            return run.info.run_id
    return None


def discard_incomplete(uri: str, scenario: str, key: str) -> list[str]:
    """Delete (MLflow's soft delete: off the board) the records with `key` that were cut
    short, with their seed runs; returns the parent run ids deleted. Call it before
    submitting `key` again, and only when no other process is recording that same key."""
    c = client(uri)
    gone = []
    with _lock(uri):
        for run in _runs_with_key(uri, scenario, key):
            if run.info.status != "RUNNING":
                continue
            _delete_record(c, run.info.experiment_id, run.info.run_id)
            gone.append(run.info.run_id)
    return gone


def _delete_record(c, exp_id: str, run_id: str) -> None:
    """Delete a submission's run and its seed runs (MLflow's soft delete: off the board);
    under the store's lock."""
    from mlflow.entities import ViewType

    children = c.search_runs(
        [exp_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=5000,
    )
    for child in children:
        c.delete_run(child.info.run_id)
    c.delete_run(run_id)
