"""Figures of a submission (logged to its MLflow run) and of a scenario's leaderboard.

Drawn with matplotlib's object API (`matplotlib.figure.Figure`, rendered by Agg; no
pyplot state, no display needed), imported only when a figure is drawn, from outputs
the evaluation already computed: nothing runs a model here.

- `submission_figures`: `histograms.png` (per-example loss and logit-scaled confidence
  of the forget set under the method's models, of the test set under them, and of the
  forget set under the gold models), `mia_roc.png` (ROC of the loss attack, forget vs
  test, for the method, gold and original models; and LiRA's ROC on log axes when the
  scenario runs it), `accuracy_seeds.png` (forget, retain and test accuracy per seed
  beside each gold model's). About 1 s for the three on two CPU cores.
- `pareto_plot`: score (or avg_gap) against unlearn_seconds, one point per method, the
  Pareto front marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .labels import figure_title

if TYPE_CHECKING:
    import pandas as pd

    from mu_bench.evaluation.inference import ModelOutputs
    from mu_bench.submission.evaluate import Evaluation
    from mu_bench.submission.prepare import Artifacts

DPI = 110
ACCURACIES = ("forget_acc", "retain_acc", "test_acc")


def _figure(width: float, height: float, panels: int = 1):
    from matplotlib.figure import Figure

    # Fixed margins: a layout engine (constrained, tight) doubles the drawing time.
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(left=0.1 / panels**0.5, right=0.98, bottom=0.14, top=0.8, wspace=0.28)
    return fig, fig.subplots(1, panels, squeeze=False)[0]


def warm_up() -> None:
    """Import matplotlib and load its font and PNG writer (about 1 s of CPU), for a
    caller that can do so ahead, while the seeds run, rather than when drawing."""
    import io

    fig, (ax,) = _figure(1, 1)
    ax.set_title("warm-up")
    fig.savefig(io.BytesIO(), format="png")


def _per_example(outputs: ModelOutputs, art: Artifacts) -> dict[str, np.ndarray]:
    """log10 loss and confidence on the forget set and on the attack's test set."""
    from mu_bench.evaluation.metrics.accuracy import per_example_loss
    from mu_bench.evaluation.metrics.confidence import logit_scaled_confidence

    f = art.split.forget_idx
    kept, gone = art.split.test_kept, art.split.test_gone
    t = gone if len(gone) else kept
    yf, yt = art.data.y_train[f], art.data.y_test[t]
    lf = per_example_loss(outputs.train[f], yf).numpy()
    lt = per_example_loss(outputs.test[t], yt).numpy()
    return {
        "forget_loss": lf,
        "test_loss": lt,
        "forget_conf": logit_scaled_confidence(outputs.train[f], yf),
        "test_conf": logit_scaled_confidence(outputs.test[t], yt),
    }


def _pooled(items: list[dict[str, np.ndarray]], name: str) -> np.ndarray:
    return np.concatenate([d[name] for d in items]) if items else np.zeros(0)


def _log_loss(loss: np.ndarray) -> np.ndarray:
    return np.log10(np.clip(np.nan_to_num(loss, nan=1e4, posinf=1e4), 1e-8, None))


def _histograms(path: Path, series: dict[str, dict[str, np.ndarray]], title: str) -> Path:
    fig, (ax_loss, ax_conf) = _figure(10, 3.6, 2)
    for ax, key, xlabel in (
        (ax_loss, "loss", "log10 cross-entropy"),
        (ax_conf, "conf", "logit-scaled confidence log p_y - log sum p_other"),
    ):
        values = {label: np.asarray(v[key], float) for label, v in series.items()}
        finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
        bins = np.histogram_bin_edges(finite, bins=50) if finite.size else 10
        for label, v in values.items():
            ax.hist(
                v[np.isfinite(v)], bins=bins, density=True, histtype="step", lw=1.6, label=label
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
    ax_loss.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path)
    return path


def _roc(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], lira, title: str) -> Path:
    from sklearn.metrics import auc, roc_curve

    fig, axes = _figure(10 if lira is not None else 5, 4, 2 if lira is not None else 1)
    ax = axes[0]
    for label, (members, non_members) in curves.items():
        scores = -np.nan_to_num(np.concatenate([members, non_members]), nan=1e4, posinf=1e4)
        labels = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    ax.set_title("loss attack: forget (members) vs test", fontsize=9)
    ax.legend(fontsize=8)
    if lira is not None:
        ax = axes[1]
        ax.plot(lira.fpr, lira.tpr, label=f"method vs gold (AUC {lira.auc:.3f})")
        lo = 1.0 / max(lira.n_negative, 1)
        ax.plot([lo, 1], [lo, 1], ls="--", color="gray", lw=0.8)
        ax.set(xscale="log", yscale="log", xlim=(lo, 1), ylim=(lo, 1))
        ax.minorticks_off()  # log axes' minor ticks cost most of this figure's drawing
        ax.set(xlabel="false positive rate", ylabel="true positive rate")
        ax.set_title("LiRA per example: unlearned vs gold models", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path)
    return path


def _strip(path: Path, method: list[dict], gold: list[dict], original: dict, title: str) -> Path:
    fig, (ax,) = _figure(6, 3.8)
    rng = np.random.default_rng(0)
    for i, name in enumerate(ACCURACIES):
        for offset, rows, color, label in (
            (-0.15, method, "tab:blue", "method (one point per seed)"),
            (0.15, gold, "gray", "gold (one point per model)"),
        ):
            y = [r[name] for r in rows if name in r]
            x = i + offset + rng.uniform(-0.06, 0.06, len(y))
            ax.scatter(x, y, s=18, color=color, alpha=0.8, label=label if i == 0 else None)
        if name in original:
            ax.scatter(
                [i],
                [original[name]],
                marker="x",
                color="tab:red",
                s=40,
                label="original" if i == 0 else None,
            )
    ax.set_xticks(range(len(ACCURACIES)), [a.replace("_", " ") for a in ACCURACIES])
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path)
    return path


def submission_figures(folder: Path, evaluation: Evaluation, art: Artifacts) -> dict[str, Path]:
    """Draw the submission's three figures into `folder`; returns {name: path}."""
    report, outputs = evaluation.report, evaluation.outputs
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    title = figure_title(report)  # two lines: who, then the parameters used
    if not outputs:
        return {}
    mine = [_per_example(o, art) for o in outputs.values()]
    gold = [_per_example(m.outputs, art) for m in art.gold]
    original = _per_example(art.original.outputs, art)
    hist = {
        f"forget, {report.method}": {
            "loss": _log_loss(_pooled(mine, "forget_loss")),
            "conf": _pooled(mine, "forget_conf"),
        },
        f"test, {report.method}": {
            "loss": _log_loss(_pooled(mine, "test_loss")),
            "conf": _pooled(mine, "test_conf"),
        },
        "forget, gold": {
            "loss": _log_loss(_pooled(gold, "forget_loss")),
            "conf": _pooled(gold, "forget_conf"),
        },
    }
    curves = {
        report.method: (_pooled(mine, "forget_loss"), _pooled(mine, "test_loss")),
        "gold": (_pooled(gold, "forget_loss"), _pooled(gold, "test_loss")),
        "original": (original["forget_loss"], original["test_loss"]),
    }
    per_seed = [s.metrics for s in report.seeds if s.status == "ok"]
    return {
        "histograms": _histograms(folder / "histograms.png", hist, title),
        "mia_roc": _roc(folder / "mia_roc.png", curves, evaluation.across.lira, title),
        "accuracy_seeds": _strip(
            folder / "accuracy_seeds.png",
            per_seed,
            list(art.reference.gold),
            report.reference.get("original", {}),
            title,
        ),
    }


def pareto_front(x: np.ndarray, y: np.ndarray, maximize: bool) -> np.ndarray:
    """Indices of the points no other point beats on both: less time and a better y."""
    order = np.lexsort((-y if maximize else y, x))  # by time, then best y first
    front, best = [], -np.inf
    for i in order:
        value = y[i] if maximize else -y[i]
        if value > best:
            front.append(i)
            best = value
    return np.array(front, dtype=int)


def pareto_plot(df: pd.DataFrame, metric: str, path: Path, title: str) -> Path:
    """`metric` against unlearn_seconds for every ranked method, the Pareto front joined."""
    rows = df[df[metric].notna() & df["unlearn_seconds"].notna()]
    x = rows["unlearn_seconds"].to_numpy(float)
    y = rows[metric].to_numpy(float)
    maximize = metric != "avg_gap"
    fig, (ax,) = _figure(6.5, 4.5)
    ax.scatter(x, y, color="tab:blue", zorder=3)
    for xi, yi, name in zip(x, y, rows["method"], strict=True):
        ax.annotate(str(name), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if len(rows):
        front = pareto_front(x, y, maximize)
        ax.step(
            x[front],
            y[front],
            where="post",
            color="tab:orange",
            lw=1.5,
            label="Pareto front",
            zorder=2,
        )
        ax.scatter(x[front], y[front], s=80, facecolors="none", edgecolors="tab:orange", zorder=4)
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.margins(x=0.12, y=0.08)  # room for the method names
    better = "higher is better" if maximize else "lower is better"
    ax.set(xlabel="unlearn seconds (median over seeds, log scale)", ylabel=f"{metric} ({better})")
    ax.set_title(title, fontsize=10)
    fig.savefig(path)
    return Path(path)
