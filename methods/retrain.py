"""`retrain`: the oracle, exact unlearning by retraining from scratch on the retain set.

Same architecture and recipe as the scenario's gold models, but its seeds come from the
submission stream, so it is an independent draw from the gold distribution and never
a bit-for-bit copy of a gold model (SalUn / Unlearn-Sparse `unlearn/retrain.py`).

Never a silent truncation: it reports `epochs` (the recipe's), `epochs_completed` (full
epochs trained) and `truncated` (1 if the budget stopped it before the recipe's last
step, else 0), and the report notes a truncated run ("retrain stopped at the budget
after k of E epochs: not the oracle"). Its default budget is 150% of the scenario's
measured retrain time (the gold models' median training time), and never less than the
scenario's budget, so without `--budget` it runs its whole recipe on any scenario (the
182-epoch `-salun` recipes included); a user's `--budget` still wins, and then a
truncated run says so. It stops early, with a valid partly trained model, at the
budget.

Presets: none, as it has no hyperparameters: it always runs the scenario's recipe, the
one its gold models ran. (The SalUn-family scripts retrain 160 epochs at lr 0.1, e.g.
Unlearn-Sparse `README.MD` line 66, while their original trains 182; here oracle and
gold models share one recipe, so the oracle is a draw from the gold distribution.)
"""

from typing import ClassVar

from torch import nn

from mu_bench.api import Method, Reads, TrainingRun, UnlearnTask, fit


class Retrain(Method):
    """Retrain from scratch on the retain set with the scenario's recipe (the oracle)."""

    reads: ClassVar[Reads] = "retain"
    default_budget: ClassVar[str | None] = "150%"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        model = task.fresh_model()
        recipe = task.recipe
        per_epoch = -(-len(task.retain) // recipe.batch_size)
        total = per_epoch * recipe.epochs
        # A run as `fit` builds it for itself (the same optimizer and schedule), kept here
        # to count the steps taken.
        run = TrainingRun(model, recipe, total)
        fit(model, task.retain, recipe, generator=task.generator, budget=task.budget, run=run)
        task.report_metric("epochs", recipe.epochs)
        task.report_metric("epochs_completed", run.steps // per_epoch if per_epoch else 0)
        task.report_metric("truncated", int(run.steps < total))
        return model
