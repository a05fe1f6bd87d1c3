"""Methods with misbehaving training stages, for the harness's training-stage tests
(imported by module path; no entry points)."""

from torch import nn

from mu_bench.api import Method, TrainTask, UnlearnTask


class FailingTrainer(Method):
    """train() raises."""

    def train(self, task: TrainTask) -> nn.Module:
        raise RuntimeError("deliberate failure in train")

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        return task.model


class WrongArchTrainer(Method):
    """train() returns a model that is not the declared architecture."""

    def train(self, task: TrainTask) -> nn.Module:
        return nn.Linear(3, 3)

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        return task.model
