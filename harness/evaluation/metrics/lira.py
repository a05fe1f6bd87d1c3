"""A per-example likelihood-ratio membership attack on the forget set (LiRA, online).

Source: Carlini et al., "Membership Inference Attacks From First Principles" (S&P 2022),
tensorflow/privacy research/mi_lira_2021/plot.py `generate_ours`; applied to
unlearning as U-LiRA argues (Hayes et al. 2024, arXiv 2403.01218: population attacks,
one threshold for all examples, overstate forgetting; an attack per example does not).

Per forget example, Gaussians are fitted to the logit-scaled confidence
(`confidence.logit_scaled_confidence`) under IN models (trained on the full training
set, forget set included: replicas of the original with other seeds) and OUT models
(the gold models, never trained on it): mean = median over models, sd = standard
deviation (+1e-30), as in `generate_ours`. A target model's membership score for the
example is log N(c; IN) - log N(c; OUT). The attack tells unlearned models (positives)
from gold models (negatives) on the forget examples: every (model, example) pair is a
sample, each gold model scored against OUT Gaussians fitted to the other gold models
(leave one out, so no model is scored by a fit it is in). Reported: ROC AUC and TPR at
1% and 0.1% FPR (`tpr[fpr < target][-1]`, as LiRA's `do_plot`). A perfect unlearner
is indistinguishable from retraining: AUC 0.5, TPR equal to the FPR; the original
model is close to AUC 1.

`fix_variance`: one sd per side over all its (model, example) values instead of one per
example, LiRA's variant for few shadow models. Deviation: LiRA's code uses the IN sd
for both sides there; this uses each side's own.

Cost: M extra models trained on the full training set at prepare time (M x the original
model's training time, once per scenario and shared by scenarios with the same data,
model and recipe); the attack itself is a few vectorised operations over (N + K) x |D_f|
values (milliseconds on digits). Non-finite scores (a zero sd) are clipped so the ROC
can be computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SD_EPS = 1e-30  # added to every sd, as in LiRA
SCORE_CLIP = 1e12


@dataclass(frozen=True)
class LiraResult:
    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    fpr: np.ndarray  # the ROC curve, for figures
    tpr: np.ndarray
    n_positive: int
    n_negative: int


def gaussian(confs: np.ndarray, fix_variance: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sd) per example from (models, examples): median and sd over models."""
    sd = np.full(confs.shape[1], np.std(confs)) if fix_variance else np.std(confs, axis=0)
    return np.median(confs, axis=0), sd + SD_EPS


def membership_scores(
    confs: np.ndarray, inside: tuple[np.ndarray, np.ndarray], outside: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """log N(c; IN) - log N(c; OUT) per (model, example): higher means "trained on it"."""
    from scipy.stats import norm

    score = norm.logpdf(confs, *inside) - norm.logpdf(confs, *outside)
    return np.nan_to_num(score, nan=0.0, posinf=SCORE_CLIP, neginf=-SCORE_CLIP)


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """The largest TPR of the ROC curve at an FPR strictly below `target`."""
    return float(tpr[np.nonzero(fpr < target)[0][-1]])


def lira_attack(
    unlearned: np.ndarray, gold: np.ndarray, in_models: np.ndarray, fix_variance: bool = False
) -> LiraResult:
    """The attack from (models, |D_f|) confidences of unlearned, gold (OUT) and IN models."""
    from sklearn.metrics import roc_auc_score, roc_curve

    if len(gold) < 3 or len(in_models) < 2 or len(unlearned) < 1:
        raise ValueError("LiRA needs >= 1 unlearned, >= 3 gold and >= 2 IN models")
    inside = gaussian(in_models, fix_variance)
    positives = membership_scores(unlearned, inside, gaussian(gold, fix_variance))
    negatives = np.stack(
        [
            membership_scores(gold[k], inside, gaussian(np.delete(gold, k, 0), fix_variance))
            for k in range(len(gold))
        ]
    )
    scores = np.concatenate([positives.ravel(), negatives.ravel()])
    labels = np.concatenate([np.ones(positives.size), np.zeros(negatives.size)])
    fpr, tpr, _ = roc_curve(labels, scores)
    return LiraResult(
        float(roc_auc_score(labels, scores)),
        tpr_at_fpr(fpr, tpr, 0.01),
        tpr_at_fpr(fpr, tpr, 0.001),
        fpr,
        tpr,
        positives.size,
        negatives.size,
    )
