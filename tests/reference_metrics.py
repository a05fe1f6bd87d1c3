"""Straightforward transcriptions of the published metric code, for tests and benchmarks.

Each function follows its source's steps literally, with no shortcut, so mu-bench's
faster implementations can be checked against it on the same inputs:
- `challenge_confidence`, `challenge_epsilons`, `challenge_forget_score`:
  google-deepmind/unlearning_evaluation, metric.py. Every decision rule is compared with
  every sample (the reference does this on a GPU; here with NumPy on the CPU). The
  rates are means of float32 indicators as in the reference (`rate_dtype=np.float32`) or
  exact float64 fractions (`rate_dtype=np.float64`, mu-bench's choice).
- `salun_mia_efficacy`: OPTML-Group/Unlearn-Saliency, evaluation/SVC_MIA.py
  (`SVC_fit_predict`, "confidence") with main_forget.py's shadow split.
- `carlini_lira`: tensorflow/privacy, research/mi_lira_2021/plot.py (`generate_ours`).
- `klom_margins`, `klom_binned_kl`, `klom_kl_from_margins`: RoyRin/data-unlearning-bench,
  unlearning_bench/eval.py (`get_margins_from_multimodel_logits`,
  `compute_binned_KL_div`, `kl_from_margins`), KLOM of Georgiev et al. (arXiv 2410.23232).
"""

from __future__ import annotations

import numpy as np
import torch

DELTA = 1e-05
EPSILON_CAP = 50
NUM_THRESHOLDS_PER_UNIT = 100


def challenge_confidence(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    logits = np.array(logits, dtype=np.float32)
    count = logits.shape[0]
    logits -= np.max(logits, axis=1, keepdims=True)
    probs = np.array(np.exp(logits), dtype=np.float64)
    probs /= np.sum(probs, axis=1, keepdims=True)
    prob_correct = probs[np.arange(count), targets[:count]].copy()
    probs[np.arange(count), targets[:count]] = 0
    prob_wrong = np.sum(probs, axis=1)
    return np.log(prob_correct + 1e-45) - np.log(prob_wrong + 1e-45)


def _double_threshold_rates(pos, neg, rate_dtype):
    pos_diff = pos.max() - pos.min()
    neg_diff = neg.max() - neg.min()
    smallest = neg_diff if pos_diff > neg_diff else pos_diff
    if pos_diff >= neg_diff:
        pos, neg = neg, pos
    buffer = 2.0
    width = smallest
    min_ = pos.min() + width - buffer
    max_ = pos.max() + buffer
    num_right = int(np.ceil((max_ - min_) * NUM_THRESHOLDS_PER_UNIT))
    right_thresholds = np.linspace(min_, max_, num=num_right)
    num_left = int(np.ceil(2 * buffer * NUM_THRESHOLDS_PER_UNIT))
    thr_left = np.concatenate(
        [
            np.linspace(tr - width - buffer, tr - width + buffer, num=num_left)
            for tr in right_thresholds
        ]
    )
    thr_right = np.tile(np.reshape(right_thresholds, (-1, 1)), (1, num_left)).reshape(-1)

    def is_pp(c):  # [num models, num thresholds]
        return np.logical_and(thr_left[None, :] <= c[:, None], c[:, None] <= thr_right[None, :])

    pp_pos, pp_neg = is_pp(pos).astype(rate_dtype), is_pp(neg).astype(rate_dtype)
    tpr = pp_pos.mean(0, dtype=rate_dtype)
    fnr = (1 - pp_pos).mean(0, dtype=rate_dtype)
    fpr = pp_neg.mean(0, dtype=rate_dtype)
    tnr = (1 - pp_neg).mean(0, dtype=rate_dtype)
    return tpr, fnr, fpr, tnr


def _single_threshold_rates(pos, neg, rate_dtype):
    all_confs = torch.cat([torch.from_numpy(pos), torch.from_numpy(neg)])
    min_val, max_val = all_confs.min(), all_confs.max()
    num_thresholds = int(torch.ceil((max_val - min_val) * NUM_THRESHOLDS_PER_UNIT))
    thresholds = torch.linspace(min_val, max_val, num_thresholds).double().numpy()
    ge_pos = (pos[:, None] >= thresholds[None, :]).astype(rate_dtype)
    ge_neg = (neg[:, None] >= thresholds[None, :]).astype(rate_dtype)
    tpr = ge_pos.mean(0, dtype=rate_dtype)
    fpr = ge_neg.mean(0, dtype=rate_dtype)
    tnr = (1 - ge_neg).mean(0, dtype=rate_dtype)
    fnr = (1 - ge_pos).mean(0, dtype=rate_dtype)
    return tpr, fnr, fpr, tnr


def challenge_epsilons(pos_confs, neg_confs, delta=DELTA, rate_dtype=np.float32):
    """`_get_epsilons`, with the positive side already chosen: (N, S) arrays."""
    epsilons = []
    for i in range(pos_confs.shape[1]):
        pos = pos_confs[:, i].reshape(-1)
        neg = neg_confs[:, i].reshape(-1)
        pos_diff = np.max(pos) - np.min(pos)
        neg_diff = np.max(neg) - np.min(neg)
        largest = pos_diff if pos_diff > neg_diff else neg_diff
        smallest = neg_diff if pos_diff > neg_diff else pos_diff
        with np.errstate(invalid="ignore", divide="ignore"):
            if smallest / largest < 0.01:
                epsilons.append(EPSILON_CAP)
                continue
        d = _double_threshold_rates(pos, neg, rate_dtype)
        s = _single_threshold_rates(pos, neg, rate_dtype)
        tpr, fnr, fpr, tnr = (np.concatenate([a, b]) for a, b in zip(d, s, strict=True))
        thr_eps = np.zeros(len(tpr))
        perfect = (fpr + fnr == 0) & (tpr + tnr == 2)
        thr_eps = np.where(perfect, np.inf, thr_eps)
        thr_eps = np.where((thr_eps == 0) & (fpr * fnr == 0), np.nan, thr_eps)
        with np.errstate(invalid="ignore", divide="ignore"):
            terms = np.array(
                [np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr)]
            )
            both_nan = np.isnan(terms).all(0)
            best = np.where(both_nan, np.nan, np.nanmax(np.where(both_nan, 0, terms), axis=0))
        thr_eps = np.where(thr_eps == 0, np.clip(best, 0, None), thr_eps)
        kept = thr_eps[~np.isnan(thr_eps)]
        # The reference asserts here; mu-bench defines "no rule survived" as epsilon 0.
        epsilons.append(np.nanmax(kept) if len(kept) else 0.0)
    return np.clip(epsilons, 0, EPSILON_CAP)


def challenge_forget_score(unlearned_confs, retrained_confs, rate_dtype=np.float32):
    """`compute_forget_score_from_confs`: returns (F, per-example epsilons)."""
    _, forget_set_size = retrained_confs.shape
    retrain_is_positive = np.median(retrained_confs, axis=0) > np.median(unlearned_confs, axis=0)
    pos_confs = np.where(retrain_is_positive, retrained_confs, unlearned_confs)
    neg_confs = np.where(retrain_is_positive, unlearned_confs, retrained_confs)
    eps = challenge_epsilons(pos_confs, neg_confs, rate_dtype=rate_dtype)
    num_models = unlearned_confs.shape[0]
    max_epsilon = np.ceil(np.log(num_models - 1))
    start_idx, bucket_size, points = 0, 0.5, 1
    end_idx = start_idx + bucket_size
    bucket_points = {}
    while end_idx <= max_epsilon:
        bucket_points[start_idx] = points
        points /= 2
        start_idx += bucket_size
        end_idx = start_idx + bucket_size
    forget_score = 0
    for e in eps:
        for start, pts in bucket_points.items():
            if e < start + bucket_size:
                forget_score += pts
                break
    return forget_score / forget_set_size, eps


def salun_mia_efficacy(retain_probs, test_probs, forget_probs) -> float:
    """SVC(C=3, gamma='auto') on [first len(test) retain (1), test (0)]; 1 - mean
    prediction on the forget set."""
    from sklearn.svm import SVC

    shadow_train = retain_probs[: len(test_probs)]
    x = np.concatenate([shadow_train, test_probs]).reshape(-1, 1)
    y = np.concatenate([np.ones(len(shadow_train)), np.zeros(len(test_probs))])
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    return float(1 - clf.predict(forget_probs.reshape(-1, 1)).mean())


def carlini_lira(in_scores, out_scores, check_scores):
    """`generate_ours` (online, per-example variance): in/out are (models, examples),
    check is (targets, examples); returns the membership score (higher = member)."""
    import scipy.stats

    mean_in, mean_out = np.median(in_scores, 0), np.median(out_scores, 0)
    std_in, std_out = np.std(in_scores, 0), np.std(out_scores, 0)
    pr_in = -scipy.stats.norm.logpdf(check_scores, mean_in, std_in + 1e-30)
    pr_out = -scipy.stats.norm.logpdf(check_scores, mean_out, std_out + 1e-30)
    return -(pr_in - pr_out)


def klom_margins(logits, labels):
    """`get_margins_from_multimodel_logits` on the CPU: (models, examples, classes) logits."""
    logits, labels = torch.as_tensor(logits), torch.as_tensor(labels)
    assert logits.dim() == 3
    n_models, n_datapoints, n_classes = logits.shape
    one_hot = torch.nn.functional.one_hot(labels, num_classes=n_classes).bool()
    one_hot = one_hot.unsqueeze(0).expand(n_models, -1, -1)
    logits_correct = logits[one_hot].view(n_models, n_datapoints)
    lse_other = logits.masked_fill(one_hot, -torch.inf).logsumexp(dim=-1)
    return logits_correct - lse_other


def klom_binned_kl(p_arr, q_arr, bin_count=20, eps=1e-5, min_val=-100, max_val=100):
    """`compute_binned_KL_div`: D_KL(p || q) of shared-bin histograms."""
    from scipy import stats

    p_arr = np.clip(p_arr, min_val, max_val)
    q_arr = np.clip(q_arr, min_val, max_val)
    bins_start = min(p_arr.min(), q_arr.min())
    bins_end = max(p_arr.max(), q_arr.max())
    if bins_start >= bins_end:
        bins_end = bins_start + 1
    bins = np.linspace(bins_start, bins_end, bin_count + 1)
    p_binned_indices = np.digitize(p_arr, bins)
    q_binned_indices = np.digitize(q_arr, bins)
    p_bin_counts = np.array([np.sum(p_binned_indices == i) for i in range(1, bin_count + 1)])
    q_bin_counts = np.array([np.sum(q_binned_indices == i) for i in range(1, bin_count + 1)])
    p_total = p_bin_counts.sum()
    q_total = q_bin_counts.sum()
    p_bin_probs = (
        p_bin_counts / p_total if p_total > 0 else np.zeros_like(p_bin_counts, dtype=float)
    )
    q_bin_probs = (
        q_bin_counts / q_total if q_total > 0 else np.zeros_like(q_bin_counts, dtype=float)
    )
    q_bin_probs_safe = np.where(p_bin_probs > 0, np.maximum(q_bin_probs, eps), q_bin_probs)
    return stats.entropy(pk=p_bin_probs, qk=q_bin_probs_safe)


def klom_kl_from_margins(all_unlearned_margins, all_oracle_margins, clip_min=-100, clip_max=100):
    """`kl_from_margins`: per-example KL(unlearned || oracle), (models, examples) inputs."""
    assert all_oracle_margins.shape == all_unlearned_margins.shape
    results_list = []
    n = all_oracle_margins.shape[1]
    for sample in range(n):
        oracle_arr = np.asarray(all_oracle_margins[:, sample])
        unlearned_arr = np.asarray(all_unlearned_margins[:, sample])
        results_list.append(
            klom_binned_kl(unlearned_arr, oracle_arr, min_val=clip_min, max_val=clip_max)
        )
    return np.stack(results_list)
