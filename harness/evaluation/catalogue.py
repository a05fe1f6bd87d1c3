"""Every metric mu-bench reports, once: name, label, direction, precision and level.

Evaluation produces these names, the store logs them, ranking reads them back and the
tables label them from here; nothing else lists metric names. Levels:

- `model`: computed per model from its one inference pass (averaged over seeds, with a
  `_std`), and for the gold and original models as references;
- `gap`: |method mean - gold mean| of a model metric;
- `submission`: needs all of a submission's models at once (forget quality, LiRA);
- `cost`: wall-clock seconds and their ratio;
- `stage`: a method's training stage (SISA): its cost and what it loses;
- `stream`: a scenario's stream of deletion requests: the cumulative cost over all its
  requests. Every other metric of a stream's request r is also logged per request, as
  `request.<name>` at MLflow step r (`REQUEST_PREFIX`, in the `8_stream` section), and
  is in the report's `requests`; the submission's own values are those after the last
  request.
- `family`: a family of forget sets (a scenario's `[family]`): the submission's own
  value of every metric is its mean over the sets; `family_sets` counts them, and
  `family.<name>_std`, `_min` and `_max` are the spread over the sets of the headline
  metrics (`FAMILY_SPREAD`; std with ddof 1, as over seeds). Each set's own value is logged as
  `set.<name>` at MLflow step = the set's draw (`SET_PREFIX`, in the `9_family`
  section), and is in the report's `forget_sets`.

`direction` says which way is better: `higher`, `lower`, or `gold` (closest to the gold
models' value is best; the gap metrics measure that distance).

In the store each metric is logged under its group (`stored`: `1_headline/score`,
`2_accuracy/forget_acc`, ...), so that MLflow's charts form one section per group with
the headline first; `bare` maps a stored name back. Costs below `TIMING_FLOOR` are not
measurable (a worker's clock and a method that returns at once): the tables print them
as "<1 ms" and no speed-up is computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher", "lower", "gold"]
Level = Literal["model", "gap", "submission", "cost", "stage", "stream", "family"]


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # short column heading
    direction: Direction
    level: Level
    digits: int = 3  # decimals shown
    doc: str = ""
    group: str = ""  # the chart section it is logged under (GROUPS); "" = by level

    @property
    def section(self) -> str:
        return self.group or LEVEL_GROUPS[self.level]


_METRICS = (
    Metric("forget_acc", "forget acc", "gold", "model", doc="top-1 accuracy on D_f"),
    Metric("retain_acc", "retain acc", "gold", "model", doc="top-1 accuracy on D_r"),
    Metric("test_acc", "test acc", "gold", "model", doc="top-1 accuracy on the kept test set"),
    Metric("test_forget_acc", "test forget acc", "gold", "model", doc="forgotten classes' test"),
    Metric("mia_efficacy", "MIA-eff", "gold", "model", doc="SalUn SVC_MIA on D_f", group="privacy"),
    Metric(
        "mia_loss_acc",
        "MIA loss acc",
        "gold",
        "model",
        doc="starting kit simple_mia",
        group="privacy",
    ),
    Metric(
        "indiscernibility",
        "indiscernibility",
        "higher",
        "model",
        doc="1 - |mia - 0.5| / 0.5",
        group="privacy",
    ),
    Metric(
        "relearn_forget_acc",
        "relearn acc",
        "gold",
        "model",
        doc="forget acc after relearning on D_r + 10% of D_f ([relearn] steps)",
        group="privacy",
    ),
    Metric(
        "relearn_retain_only_acc",
        "relearn acc (D_r)",
        "gold",
        "model",
        doc="forget acc after relearning on D_r only",
        group="privacy",
    ),
    Metric("forget_acc_gap", "forget gap", "lower", "gap"),
    Metric("retain_acc_gap", "retain gap", "lower", "gap"),
    Metric("test_acc_gap", "test gap", "lower", "gap"),
    Metric("mia_efficacy_gap", "MIA-eff gap", "lower", "gap"),
    Metric(
        "avg_gap",
        "avg gap",
        "lower",
        "gap",
        doc="SalUn's Avg. Gap over UA, RA, TA, MIA",
        group="headline",
    ),
    Metric("relearn_forget_acc_gap", "relearn gap", "lower", "gap", doc="vs gold, same steps"),
    Metric("relearn_retain_only_acc_gap", "relearn gap (D_r)", "lower", "gap"),
    Metric("score", "score", "higher", "submission", doc="F x RA ratio x TA ratio"),
    Metric("score_norm", "score norm", "higher", "submission", doc="score / ceiling"),
    Metric("forget_quality", "F / ceiling", "higher", "submission", doc="challenge forget quality"),
    Metric("forget_quality_ceiling", "ceiling", "higher", "submission", doc="gold vs gold F"),
    Metric("forget_quality_norm", "F norm", "higher", "submission", doc="F / ceiling"),
    Metric("forget_quality_models", "N", "higher", "submission", 0, "models per side"),
    Metric(
        "lira_auc",
        "LiRA AUC",
        "lower",
        "submission",
        doc="per-example LiRA, 0.5 ideal",
        group="privacy",
    ),
    Metric("lira_tpr_at_1pct_fpr", "LiRA TPR@1%", "lower", "submission", group="privacy"),
    Metric("lira_tpr_at_0.1pct_fpr", "LiRA TPR@0.1%", "lower", "submission", group="privacy"),
    Metric(
        "klom",
        "KLOM",
        "lower",
        "submission",
        doc="p95 of per-example KL of margins vs gold",
        group="privacy",
    ),
    Metric(
        "klom_floor",
        "KLOM floor",
        "lower",
        "submission",
        doc="holdout gold's KLOM, same N",
        group="privacy",
    ),
    Metric(
        "klom_undefined",
        "KLOM NaN",
        "lower",
        "submission",
        0,
        "examples KLOM leaves NaN",
        group="privacy",
    ),
    Metric("unlearn_seconds", "unlearn s", "lower", "cost", 2, "median unlearn() time"),
    Metric("retrain_seconds", "retrain s", "lower", "cost", 2, "gold retrain time"),
    Metric("speedup", "speed-up", "higher", "cost", 2, "retrain / unlearn seconds"),
    Metric("wall_seconds", "wall s", "lower", "cost", 2, "a seed's call, timed outside"),
    Metric("train_seconds", "train s", "lower", "stage", 2, "training stage cost"),
    Metric("trained_test_acc", "trained test acc", "higher", "stage"),
    Metric("trained_acc_drop", "acc lost (train)", "lower", "stage"),
    Metric("stream_requests", "requests", "higher", "stream", 0, "deletion requests"),
    Metric(
        "stream_unlearn_seconds",
        "stream unlearn s",
        "lower",
        "stream",
        2,
        "unlearn() time summed over the requests (median over seeds); per request: so far",
    ),
    Metric(
        "stream_retrain_seconds",
        "stream retrain s",
        "lower",
        "stream",
        2,
        "retraining after every request: each prefix's gold retrain time, summed",
    ),
    Metric(
        "stream_speedup",
        "stream speed-up",
        "higher",
        "stream",
        2,
        "stream retrain / stream unlearn seconds",
    ),
)
# A family's spread over its forget sets, of these metrics (each a `family.<name>_std`,
# `_min` and `_max`).
FAMILY_SPREAD = (
    "score_norm",
    "forget_quality",
    "forget_quality_norm",
    "avg_gap",
    "forget_acc",
    "retain_acc",
    "test_acc",
    "mia_efficacy",
)
FAMILY_PREFIX = "family."
# A family's per-set metrics are logged under this prefix, at step = the set's draw.
SET_PREFIX = "set."
_FAMILY_STATS = {"std": "spread (std) over the forget sets", "min": "lowest set", "max": "highest"}
_METRICS += (Metric("family_sets", "sets", "higher", "family", 0, "forget sets in the family"),)
_METRICS += tuple(
    Metric(
        f"{FAMILY_PREFIX}{name}_{stat}",
        f"{next(m.label for m in _METRICS if m.name == name)} {stat} (sets)",
        "lower" if stat == "std" else next(m.direction for m in _METRICS if m.name == name),
        "family",
        doc=doc,
    )
    for name in FAMILY_SPREAD
    for stat, doc in _FAMILY_STATS.items()
)
CATALOGUE: dict[str, Metric] = {m.name: m for m in _METRICS}

# Chart sections, in order: the number in front keeps MLflow's alphabetical sections in
# this order, headline first.
GROUPS = (
    "headline",
    "accuracy",
    "privacy",
    "gap",
    "cost",
    "stage",
    "method",
    "stream",
    "family",
)
LEVEL_GROUPS = {"model": "accuracy", "gap": "gap", "submission": "headline", "cost": "cost"}
LEVEL_GROUPS["stage"] = "stage"
LEVEL_GROUPS["stream"] = "stream"
LEVEL_GROUPS["family"] = "family"
_PREFIX = {g: f"{i}_{g}" for i, g in enumerate(GROUPS, 1)}

# A worker's clock cannot tell a method that returns at once from one that takes 1 ms.
TIMING_FLOOR = 1e-3
# Speed-ups above this print as ">1000x": the retrain time over a cost near the floor.
SPEEDUP_CAP = 1000.0

# The leaderboard's metric columns (every output format has them), in order; the stage
# metrics join them where some submission has them, as do numbers methods report.
BOARD = (
    "score",
    "score_norm",
    "forget_quality",
    "forget_quality_ceiling",
    "forget_quality_norm",
    "forget_quality_models",
    "avg_gap",
    "forget_acc",
    "retain_acc",
    "test_acc",
    "mia_efficacy",
    "mia_loss_acc",
    "indiscernibility",
    "lira_auc",
    "lira_tpr_at_1pct_fpr",
    "lira_tpr_at_0.1pct_fpr",
    "klom",
    "klom_floor",
    "klom_undefined",
    "relearn_forget_acc",
    "relearn_retain_only_acc",
    "relearn_forget_acc_gap",
    "unlearn_seconds",
    "speedup",
)
# What the terminal and Markdown tables show of them (forget quality with its ceiling).
SHOWN = (
    "score",
    "forget_quality",
    "forget_quality_norm",
    "avg_gap",
    "forget_acc",
    "retain_acc",
    "test_acc",
    "mia_efficacy",
    "lira_auc",
    "klom",
    "relearn_forget_acc",
    "unlearn_seconds",
    "speedup",
)
# A training stage's columns, where some submission has one: its cost and the test
# accuracy its trained model loses against the original (SISA: to sharding).
STAGE_SHOWN = ("train_seconds", "trained_acc_drop")
# A deletion stream's columns, where some submission has them: its cumulative cost.
STREAM_SHOWN = ("stream_unlearn_seconds", "stream_speedup")
# A family's columns, where some submission has them: its sets and the spread of F norm.
FAMILY_SHOWN = ("family_sets", "family.forget_quality_norm_std")
# Model metrics whose gap to gold is reported and averaged into avg_gap (SalUn's Avg.
# Gap: UA = 1 - forget_acc has the same gap as forget_acc).
GAP_METRICS = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")
# A board is ranked by the first of these it has (higher is better), then by FALLBACK.
RANK_BY = ("score_norm", "score")
FALLBACK = "avg_gap"  # lower is better
# Numbers a method reports itself (`task.report_metric`) are logged under this prefix.
METHOD_PREFIX = "method."
# A stream's per-request metrics are logged under this prefix, at step = request index.
REQUEST_PREFIX = "request."


def of_level(*levels: Level) -> tuple[str, ...]:
    """Names of the metrics of the given levels, in catalogue order."""
    return tuple(m.name for m in _METRICS if m.level in levels)


def label(name: str) -> str:
    """Column heading of a metric (a method's own number: its name in words)."""
    if name in CATALOGUE:
        return CATALOGUE[name].label
    return name.removeprefix(METHOD_PREFIX).replace("_", " ")


def digits(name: str) -> int:
    return CATALOGUE[name].digits if name in CATALOGUE else 3


def group_of(name: str) -> str:
    """The section a metric (or its `_std`, or a method's own number) is logged under."""
    base = name.removesuffix("_std")
    if base in CATALOGUE:
        return CATALOGUE[base].section
    if base.startswith(REQUEST_PREFIX):
        return "stream"
    if base.startswith((SET_PREFIX, FAMILY_PREFIX)):
        return "family"
    return "method" if base.startswith(METHOD_PREFIX) else "headline"


def stored(name: str) -> str:
    """The name a metric is logged under in the store: `1_headline/score`."""
    return f"{_PREFIX[group_of(name)]}/{name}"


def bare(name: str) -> str:
    """A stored metric name without its group (names from before groups pass through)."""
    group, sep, rest = name.partition("/")
    return rest if sep and group in _PREFIX.values() else name
