"""`TrainConfig`: a scenario's `[train]` recipe, for the original model, every gold model,
and any method that trains the way the scenario does (`task.recipe`). Torch-free."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    schedule: Literal["constant", "cosine", "multistep", "onecycle"] = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = Field(0.1, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    augment: Literal["none", "crop-flip"] = "none"
