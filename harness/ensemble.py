"""The `ensemble` architecture: S members of one architecture and an aggregation rule.

SISA returns one (its shard models); any method whose model is several models can. The
harness rebuilds it from its `ModelSpec` like any other architecture, so it has the
same contract: inputs of the scenario's shape in, logits of shape (n, classes) out.

- `vote`: label majority vote, as SISA's original `aggregation.py` (one-hot argmax
  outputs summed over shards). The "logits" are the (weighted) vote counts, so argmax is
  the majority label with ties going to the lowest class index, as `np.argmax` does.
  Loss-based metrics see softmax(vote counts): a coarse but finite and monotone function
  of the true class's share of the votes.
- `softmax-mean`: the mean of the members' softmax probabilities (the simpler SISA
  reimplementation); the logits are log(mean probability), so softmax of them is that
  mean and the loss is its cross-entropy.

A buffer `member_weights` (default all ones, the original's `uniform` strategy) weighs
each member; a weight of 0 drops a member (SISA drops a shard it could not retrain in
time, or whose every example was forgotten). With every weight 0 the output is zeros.
The module is `networks.Ensemble`; this file imports no torch, so loading a scenario
stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from torch import nn

    from .models import ModelSpec

Aggregation = Literal["vote", "softmax-mean"]


class EnsembleParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    member_arch: str
    member_params: dict[str, Any] = Field(default_factory=dict)
    members: int = Field(ge=1, le=4096)
    aggregation: Aggregation = "vote"

    @field_validator("member_arch")
    @classmethod
    def _not_nested(cls, arch: str) -> str:
        if arch == "ensemble":
            raise ValueError("an ensemble's members cannot themselves be ensembles")
        return arch


def build_ensemble(spec: ModelSpec, p: EnsembleParams) -> nn.Module:
    from .models import ModelSpec, build_model
    from .networks import Ensemble

    member = ModelSpec(p.member_arch, p.member_params, spec.input_shape, spec.num_classes)
    members = [build_model(member) for _ in range(p.members)]
    return Ensemble(members, spec.num_classes, p.aggregation)


def ensemble_spec(member: ModelSpec, members: int, aggregation: Aggregation = "vote") -> ModelSpec:
    """The spec of an ensemble of `members` models of `member`'s architecture."""
    from .models import ModelSpec

    params = {
        "member_arch": member.arch,
        "member_params": dict(member.params),
        "members": members,
        "aggregation": aggregation,
    }
    return ModelSpec("ensemble", params, member.input_shape, member.num_classes)
