"""The worker's side of a `TrainModelRequest`: train one of a scenario's own models from
scratch with harness code (no plugin is imported), then its one inference pass.

The same function trains in process (`prepare`) and here, so a gold model trained on a
Dask worker is the one a local prepare would have trained. The weights are saved as CPU
tensors (the submitting machine may have no GPU); the logits of the pass over the
training and test sets' inputs go to `output/outputs.pt`.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .protocol import LOGITS, OUTPUT, STARTED, WEIGHTS, TrainModelRequest, WorkerResult


def run(folder: Path, request: TrainModelRequest) -> WorkerResult:
    from ..data.split import Split
    from ..models.spec import ModelSpec
    from ..toolkit.recipe import TrainConfig
    from ..toolkit.scratch import train_from_scratch
    from ..toolkit.training import predict_logits

    spec = ModelSpec.from_dict(request.model_spec)
    recipe = TrainConfig.model_validate(request.recipe)
    data = torch.load(folder / request.inputs["train"], weights_only=True)
    train_set = Split(data["x"], data["y"], recipe.augment)
    inputs = torch.load(folder / request.inputs["infer"], weights_only=True)
    (folder / OUTPUT / STARTED).write_text(str(time.time()))
    model, seconds = train_from_scratch(spec, train_set, recipe, request.rng_seed, request.device)
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    torch.save(state, folder / OUTPUT / WEIGHTS)
    logits = {
        "train": predict_logits(model, inputs["x_train"]),
        "test": predict_logits(model, inputs["x_test"]),
    }
    torch.save(logits, folder / OUTPUT / LOGITS)
    return WorkerResult("ok", seconds)
