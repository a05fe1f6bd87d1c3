"""SCRUB+R: the notebook's rewind rule on hand-made errors, the forget-validation set,
and, through the real runner, that the model it returns is SCRUB's after the epoch it
chose. (That it forgets digit 3 and keeps utility: `test_baselines.py`.)"""

import torch

from mu_bench.api import Split
from mu_bench.methods.scrub_r import forget_validation, rewind_index
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan


def test_rewind_picks_the_epoch_whose_forget_error_is_nearest_the_validation_error():
    # Forget error after 0..5 epochs; the forget-validation error at the end is 0.3.
    errors = [0.0, 0.1, 0.25, 0.4, 0.8, 0.9]
    assert rewind_index(errors, 0.3) == 2  # |0.25 - 0.3| = 0.05 < |0.4 - 0.3| = 0.1
    assert rewind_index(errors, 0.95) == 5
    assert rewind_index(errors, 0.0) == 0  # the starting model
    assert rewind_index([0.2, 0.4, 0.2], 0.3) == 0  # ties: the first, as Python's min


def test_forget_validation_keeps_the_forget_sets_classes():
    val = Split(torch.zeros(6, 1), torch.tensor([0, 1, 2, 3, 3, 1]))
    forget = Split(torch.zeros(2, 1), torch.tensor([3, 1]))
    assert forget_validation(val, forget).y.tolist() == [1, 3, 3, 1]


def test_scrub_r_returns_scrubs_model_after_the_chosen_epoch():
    rewound = run(plan("scrub-r", "digits-random10", seeds=1), "cpu")
    report = rewound.report
    assert report.status == "ok", report.seeds[0].error
    chosen = int(report.seeds[0].metrics["method.rewind_epoch"])
    assert report.seeds[0].metrics["method.epochs_run"] == 5 and 0 <= chosen <= 5
    if chosen == 0:
        reference = run(plan("noop", "digits-random10", seeds=1), "cpu")
    else:
        reference = run(plan("scrub", "digits-random10", 1, params={"epochs": str(chosen)}), "cpu")
    assert reference.report.status == "ok"
    torch.testing.assert_close(rewound.outputs[0].test, reference.outputs[0].test)
    torch.testing.assert_close(rewound.outputs[0].train, reference.outputs[0].train)
