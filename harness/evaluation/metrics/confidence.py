"""Per-example confidence statistics of the true class, from logits, in float64.

- `logit_scaled_confidence`: the statistic of the NeurIPS 2023 unlearning challenge's
  forget quality and of LiRA (google-deepmind/unlearning_evaluation, metric.py
  `compute_logit_scaled_confidence`, adapted from tensorflow/privacy
  research/mi_lira_2021/score.py): after subtracting the largest logit and a softmax,
  `log(p_y + 1e-45) - log(sum_{y' != y} p_y' + 1e-45)`, the wrong classes summed with the
  true class zeroed (not `1 - p_y`, which cancels to 0 for a confident model). Bounded
  by about +-103.6 by the 1e-45 guard.
- `true_class_probability`: the softmax probability of the label, the feature of SalUn's
  SVC membership attack (OPTML-Group/Unlearn-Saliency, evaluation/SVC_MIA.py, the
  "confidence" variant).

Deviation: the challenge exponentiates float32 logits and then casts to float64; here
the whole softmax is float64 (differences of about 1e-7). Non-finite logits (a diverged
model) give the least confident value instead of NaN, so the metrics still run.
Vectorised over examples: microseconds per thousand examples.
"""

from __future__ import annotations

import numpy as np
import torch

TINY = 1e-45  # the challenge's guard inside both logarithms
FLOOR = float(np.log(TINY))  # confidence of a model that puts no mass on the label


def softmax64(logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 after subtracting each row's largest logit."""
    z = torch.as_tensor(logits).detach().cpu().double().numpy().copy()
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p


def _labels(labels: torch.Tensor | np.ndarray) -> np.ndarray:
    return torch.as_tensor(labels).detach().cpu().numpy().astype(np.int64)


def true_class_probability(
    logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray
) -> np.ndarray:
    """p_y per example (float64); 0 where the logits are not finite."""
    if len(labels) == 0:
        return np.zeros(0)
    p = softmax64(logits)
    return np.nan_to_num(p[np.arange(len(p)), _labels(labels)], nan=0.0)


def logit_scaled_confidence(
    logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray
) -> np.ndarray:
    """log(p_y + 1e-45) - log(sum of the other p + 1e-45) per example (float64)."""
    if len(labels) == 0:
        return np.zeros(0)
    p = softmax64(logits)
    rows, y = np.arange(len(p)), _labels(labels)
    correct = p[rows, y].copy()
    p[rows, y] = 0.0
    wrong = p.sum(axis=1)
    conf = np.log(correct + TINY) - np.log(wrong + TINY)
    return np.nan_to_num(conf, nan=FLOOR)
