"""Population membership-inference attacks (one attacker for every example).

`mia_loss_acc`: the NeurIPS 2023 unlearning challenge starting kit's `simple_mia`
(unlearning-challenge/starting-kit, unlearning-CIFAR10.ipynb). Feature: per-example
cross-entropy; members = forget set, non-members = test set, balanced by subsampling
the larger side; `LogisticRegression()`; mean accuracy of `cross_val_score` over
`StratifiedShuffleSplit(n_splits=10, random_state=0)`. 0.5 means the attacker cannot
tell forgotten from unseen examples; compare with the gold model's value.
Deviations: the kit shuffles with an unseeded `np.random.shuffle`; we subsample with a
seeded generator so the score is reproducible; non-finite losses of a diverged
model are capped at `LOSS_CAP` (SCRUB's copy clips losses to [-100, 100] for the same
reason) so the attack still runs. `indiscernibility` = 1 - |mia_loss_acc - 0.5| / 0.5
(DeepUnlearn, xcadet/deepunlearn munl/evaluation: 1 when the attack is at chance).

`mia_efficacy`: SalUn's `SVC_MIA`, "confidence" variant (OPTML-Group/Unlearn-Saliency,
Classification/evaluation/SVC_MIA.py `SVC_fit_predict`; the split is main_forget.py's).
Feature: the softmax probability of the true label. An RBF `SVC(C=3, gamma="auto")` is
trained on the first |D_t| retain examples (members, 1) against the test set
(non-members, 0), then applied to the forget set; the score is the fraction of forget
examples predicted non-member (higher means more forgotten; compare with gold's value,
about 0.13 for SalUn's CIFAR-10 retrain). About 30 ms on digits; the SVC is quadratic
in |D_t|: about 17 s for CIFAR's 10,000 + 10,000 on this CPU
(`benchmarks/metrics_at_scale.py`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def balanced_members(
    members: np.ndarray, non_members: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels with equal members (1) and non-members (0), subsampled at random."""
    rng = np.random.default_rng(seed)
    n = min(len(members), len(non_members))
    m = members[rng.permutation(len(members))[:n]]
    nm = non_members[rng.permutation(len(non_members))[:n]]
    x = np.concatenate([m, nm]).reshape(-1, 1)
    y = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    return x, y


LOSS_CAP = 1e4  # a diverged model's inf/NaN losses become this, so the attack still runs


def finite_losses(losses: np.ndarray) -> np.ndarray:
    return np.clip(
        np.nan_to_num(np.asarray(losses, dtype=float), nan=LOSS_CAP, posinf=LOSS_CAP), 0, LOSS_CAP
    )


@lru_cache(maxsize=16)
def attack_splits(n: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The loss attack's 10 (train, test) index splits for n members and n non-members:
    `StratifiedShuffleSplit(n_splits=10, random_state=0)`, which sees only the labels (n
    ones, then n zeros) and the row count, so every model of a scenario gets the same."""
    from sklearn.model_selection import StratifiedShuffleSplit

    y = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    splits = tuple(
        StratifiedShuffleSplit(n_splits=10, random_state=0).split(np.zeros((2 * n, 1)), y)
    )
    for part in (a for split in splits for a in split):
        part.setflags(write=False)
    return splits


def mia_loss_acc(forget_losses: np.ndarray, test_losses: np.ndarray, seed: int = 0) -> float:
    """Mean cross-validated accuracy of a logistic-regression attack on the loss.

    What `cross_val_score(LogisticRegression(), x, y, cv=StratifiedShuffleSplit(10,
    random_state=0), scoring="accuracy").mean()` computes, the same fits on the same rows
    and the same arithmetic (tests/test_attacks.py checks equality), without its
    per-call machinery: the splits are made once per size, each fold's model is fitted
    and scored directly, and scikit-learn's input and parameter checks are skipped (the
    losses are finite, the parameters the defaults). About half the time."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    x, y = balanced_members(finite_losses(forget_losses), finite_losses(test_losses), seed)
    if len(y) < 20:
        return float("nan")  # too few examples for 10 stratified splits
    scores = []
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for train, test in attack_splits(len(y) // 2):
            model = LogisticRegression().fit(x[train], y[train])
            scores.append(float(np.average(model.predict(x[test]) == y[test])))
    return float(np.asarray(scores).mean())


def indiscernibility(mia_acc: float) -> float:
    """1 - |mia - 0.5| / 0.5: 1 at chance, 0 for a perfect (or perfectly wrong) attack."""
    return 1.0 - abs(mia_acc - 0.5) / 0.5


def mia_efficacy(
    retain_probs: np.ndarray, test_probs: np.ndarray, forget_probs: np.ndarray
) -> float:
    """Share of the forget set an SVC trained on retain-vs-test predicts non-member."""
    from sklearn.svm import SVC

    members = np.asarray(retain_probs, dtype=float)[: len(test_probs)]
    x = np.concatenate([members, np.asarray(test_probs, dtype=float)]).reshape(-1, 1)
    y = np.concatenate([np.ones(len(members), dtype=int), np.zeros(len(test_probs), dtype=int)])
    if len(forget_probs) == 0 or len(np.unique(y)) < 2:
        return float("nan")
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    return float(1.0 - clf.predict(np.asarray(forget_probs, dtype=float).reshape(-1, 1)).mean())
