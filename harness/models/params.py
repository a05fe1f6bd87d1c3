"""Every architecture's parameters (a scenario's `[model]` keys), validated by pydantic.
Torch-free, so loading a scenario stays cheap; the modules are in `networks.py`.

- `mlp`: fully connected ReLU layers (`hidden` widths, optional dropout).
- `cnn1d`: the MNIST-1D paper's `ConvBase` (greydanus/mnist1d `notebooks/models.py`):
  three 1-D convolutions of `channels` (kernel 5 stride 2 padding 1, then kernel 3
  stride 2 padding 1 twice), ReLU after each, and a linear classifier on the flattened
  features (25 x 5 = 125 for length-40 signals); about 5,000 parameters.
- `resnet18`: ResNet-18 as the SalUn-family code builds it for CIFAR
  (OPTML-Group/Unlearn-Saliency `Classification/models/ResNet.py`): a
  `NormalizeByChannelMeanStd` first layer (`normalize`, buffers `mean` and `std`), a 3x3
  stride-1 `conv1` and no max-pool (`stem = "cifar"`), torchvision's `BasicBlock`s in
  `layer1`..`layer4` and `fc`; parameter names are torchvision's, so SalUn checkpoints
  and layer-name filters (Scissorhands, SalUn masks) apply unchanged. `stem =
  "imagenet"` is torchvision's 7x7/2 stem with max-pool, the NeurIPS 2023 starting
  kit's model. `width` scales every stage (64 = ResNet-18; narrow widths make CPU test
  variants). Initialisation is torchvision's (Kaiming normal, fan_out, for convolutions).
- `ensemble`: S members of one architecture and an aggregation rule (SISA's shards):
  `vote` is SISA's `aggregation.py` label majority vote (the "logits" are the weighted
  vote counts, so argmax is the majority label with ties to the lowest class index, as
  `np.argmax`); `softmax-mean` is the mean of the members' softmax probabilities (the
  logits are its log). Evaluation predicts with the ensemble's own rule, but the
  membership attacks and confidence statistics (MIAs, forget quality, LiRA, KLOM) of a
  `vote` read the members' weighted mean softmax probability (`inference.infer`): a
  probability comparable to a single model's, where softmax(vote counts) was not. A buffer
  `member_weights` (default ones) weighs each member; 0 drops one (SISA drops a shard
  it could not retrain in time); with every weight 0 the output is zeros.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# SalUn's NormalizeByChannelMeanStd values for CIFAR-10 (utils.setup_model_dataset).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class ModelConfig(BaseModel):
    """A scenario's `[model]` section: `arch` plus that architecture's own keys."""

    model_config = ConfigDict(extra="allow", frozen=True)
    arch: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MLPParams(Params):
    hidden: tuple[int, ...] = Field((256, 256), min_length=1)
    dropout: float = Field(0.0, ge=0, lt=1)


class Cnn1dParams(Params):
    channels: int = Field(25, ge=1)


class ResNet18Params(Params):
    width: int = Field(64, ge=1)
    stem: Literal["cifar", "imagenet"] = "cifar"
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD

    @model_validator(mode="after")
    def _mean_std(self) -> ResNet18Params:
        if len(self.mean) != len(self.std):
            raise ValueError("'mean' and 'std' need one value per input channel each")
        if any(s <= 0 for s in self.std):
            raise ValueError("'std' values must be positive")
        return self


class EnsembleParams(Params):
    member_arch: str
    member_params: dict[str, Any] = Field(default_factory=dict)
    members: int = Field(ge=1, le=4096)
    aggregation: Literal["vote", "softmax-mean"] = "vote"

    @field_validator("member_arch")
    @classmethod
    def _not_nested(cls, arch: str) -> str:
        if arch == "ensemble":
            raise ValueError("an ensemble's members cannot themselves be ensembles")
        return arch
