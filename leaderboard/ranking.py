"""Rank submissions read back from the store.

One row per submission (by default only the latest per method, version and
hyperparameters). Submissions with a forget quality F (two or more seeds) are ranked
first, by the challenge's `score` = F x (RA_U / RA_R) x (TA_U / TA_R), higher is better;
where the scenario has a forget-quality ceiling, by `score_norm` = score / ceiling,
which orders submissions with the same N exactly as `score` does and stays comparable
when N differs (raw F rises as N falls). Ties, and the submissions without F, are
ordered by `avg_gap` (SalUn's mean absolute gap to the gold models over UA, RA, TA and
MIA-efficacy; lower is better). Without a ceiling, submissions rank by raw `score` only
beside others with the same N (`seed_groups`): the board's usual N first. Submissions
with no successful seed stay on the board, below the ranked ones, with their status.
"""

from __future__ import annotations

import pandas as pd

from mu_bench.evaluation.catalogue import (
    BOARD,
    FALLBACK,
    FAMILY_SHOWN,
    METHOD_PREFIX,
    RANK_BY,
    STAGE_SHOWN,
    STREAM_SHOWN,
    bare,
)

from . import store

# (column in the table, tag in the store)
COLUMNS = {
    "method": "tags.mu_bench.method",
    "status": "tags.mu_bench.status",
    "seeds": "tags.mu_bench.seeds_ok",
    "in_scope": "tags.mu_bench.in_scope",
    "version": "tags.mu_bench.version",
    "params": "tags.mu_bench.params",
    "sandbox": "tags.mu_bench.sandbox",  # absent on runs recorded before the sandbox
    "preset": "tags.mu_bench.preset",
    "overrides": "tags.mu_bench.overrides",  # absent from runs recorded before it existed
    # Where the parameters came from (defaults, preset, fair-tuning, user) and the
    # preset's provenance (`submission.presets`); absent on older records.
    "params_from": "tags.mu_bench.params_source",
    "params_provenance": "tags.mu_bench.params_provenance",
}
# Stage, stream and family metrics are columns only when some submission has them, then the
# numbers methods report themselves (`method.<name>`, e.g. SISA's shards retrained).
EXTRA_METRICS = STAGE_SHOWN + STREAM_SHOWN + FAMILY_SHOWN


def rank_metric(df: pd.DataFrame) -> str:
    """The metric a board is ranked by: score_norm, else score, else avg_gap."""
    for name in RANK_BY:
        if name in df and df[name].notna().any():
            return name
    return FALLBACK


def forget_n(df: pd.DataFrame) -> pd.Series:
    """The N that each row's forget quality F was computed from (its models, else its
    successful seeds)."""
    n = df.get("forget_quality_models")
    ok = df["seeds_ok"].astype("Float64")
    return ok if n is None else pd.to_numeric(n, errors="coerce").fillna(ok)


def seed_groups(df: pd.DataFrame, metric: str) -> pd.Series:
    """The group each scored row ranks within. Raw `score` is comparable only between
    submissions whose F has the same N (F rises as N falls), so on a board without a
    ceiling the rows rank within their N: the board's most common N first, then larger
    N before smaller. `score_norm` is comparable across N: one group."""
    if metric != "score":
        return pd.Series(0, index=df.index)
    n = forget_n(df)
    usual = n.mode().max() if n.notna().any() else None
    return n.map(lambda v: (0, 0) if v == usual else (1, -(v if pd.notna(v) else 0)))


def extra_metrics(runs: pd.DataFrame) -> list[str]:
    """The optional metrics present in `runs` (a `load` result), in display order."""
    found = [m for m in EXTRA_METRICS if f"metrics.{m}" in runs]
    reported = [
        c.removeprefix("metrics.")
        for c in runs.columns
        if c.startswith(f"metrics.{METHOD_PREFIX}") and not c.endswith("_std")
    ]
    return found + sorted(reported)


def scenarios(uri: str) -> list[str]:
    c = store.client(uri)
    names = [e.name for e in c.search_experiments() if e.name.startswith(store.EXPERIMENT_PREFIX)]
    return sorted(n[len(store.EXPERIMENT_PREFIX) :] for n in names)


def load(uri: str, scenario: str) -> pd.DataFrame:
    """All submissions to one scenario as a DataFrame (empty if there are none), with
    `mlflow.search_runs`' columns (run_id, start_time, metrics.*, params.*, tags.*), the
    metrics under their bare names (`score`, whether stored as `1_headline/score` or not).

    Through an explicit client: the fluent `mlflow.search_runs` needs
    `mlflow.set_tracking_uri`, which also sets `MLFLOW_TRACKING_URI` in this process's
    environment, and every later subprocess (a worker, a second submit) would inherit it.
    """
    from mlflow.entities import ViewType

    c = store.client(uri)
    exp = c.get_experiment_by_name(store.experiment_name(scenario))
    if exp is None:
        return pd.DataFrame()
    rows, token = [], None
    while True:
        page = c.search_runs(
            [exp.experiment_id],
            filter_string="tags.mu_bench.kind = 'submission'",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            page_token=token,
        )
        for run in page:
            row = {
                "run_id": run.info.run_id,
                "status": run.info.status,
                "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
            }
            metrics = {bare(k): v for k, v in run.data.metrics.items()}
            for prefix, values in (
                ("metrics", metrics),
                ("params", run.data.params),
                ("tags", run.data.tags),
            ):
                row.update({f"{prefix}.{k}": v for k, v in values.items()})
            rows.append(row)
        token = page.token
        if not token:
            return pd.DataFrame(rows)


def table(runs: pd.DataFrame, latest_only: bool = True) -> pd.DataFrame:
    """The ranked leaderboard: rank, method, status, metrics (mean and std), run id."""
    if runs.empty:
        return pd.DataFrame(columns=["rank", *COLUMNS, *BOARD, "run_id"])
    df = pd.DataFrame({name: runs.get(col) for name, col in COLUMNS.items()})
    # "5/8": seeds ok out of seeds run, as numbers too.
    counts = df["seeds"].fillna("0/0").astype(str).str.partition("/")
    df["seeds_ok"] = pd.to_numeric(counts[0], errors="coerce").astype("Int64")
    df["seeds_total"] = pd.to_numeric(counts[2], errors="coerce").astype("Int64")
    for m in (*BOARD, *extra_metrics(runs)):
        df[m] = runs.get(f"metrics.{m}")
        if f"metrics.{m}_std" in runs:
            df[f"{m}_std"] = runs[f"metrics.{m}_std"]
    df["run_id"] = runs["run_id"]
    df["start_time"] = runs["start_time"]
    if latest_only:
        df = df.sort_values("start_time", ascending=False)
        df = df.drop_duplicates(subset=["method", "version", "params"], keep="first")
    metric = rank_metric(df)
    scored = df[df[metric].notna()] if metric != FALLBACK else df.iloc[:0]
    rest = df.drop(scored.index)
    if len(scored):
        scored = scored.assign(_group=seed_groups(scored, metric))
        scored = scored.sort_values(["_group", metric, FALLBACK], ascending=[True, False, True])
        scored = scored.drop(columns="_group")
    by_gap = rest[rest[FALLBACK].notna()].sort_values(FALLBACK)
    unranked = rest[rest[FALLBACK].isna()].sort_values("start_time", ascending=False)
    ranked = pd.concat([scored, by_gap])
    out = pd.concat([ranked, unranked], ignore_index=True)
    out.insert(0, "rank", [i + 1 if i < len(ranked) else None for i in range(len(out))])
    out["rank"] = out["rank"].astype("Int64")
    return out.reset_index(drop=True)
