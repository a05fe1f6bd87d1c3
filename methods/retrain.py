"""`retrain`: the oracle, exact unlearning by retraining from scratch on the retain set.

Same architecture and recipe as the scenario's gold models, but its seeds come from the
submission stream, so it is an independent draw from the gold distribution and never
a bit-for-bit copy of a gold model (SalUn / Unlearn-Sparse `unlearn/retrain.py`).
Stops early, with a valid partly trained model, if the budget runs out.
"""

from typing import ClassVar

from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask, fit


class Retrain(Method):
    """Retrain from scratch on the retain set with the scenario's recipe (the oracle)."""

    reads: ClassVar[Reads] = "retain"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        model = task.fresh_model()
        return fit(model, task.retain, task.recipe, generator=task.generator, budget=task.budget)
