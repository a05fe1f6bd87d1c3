"""`ModelSpec`: an architecture as plain, JSON-able data (arch, params, input shape,
classes), so the harness can rebuild any model it evaluates from the spec alone and load
weights with `torch.load(weights_only=True)`: plugin code never runs in evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    params: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    num_classes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "params": self.params,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(d["arch"], dict(d["params"]), tuple(d["input_shape"]), int(d["num_classes"]))


def ensemble_spec(
    member: ModelSpec, members: int, aggregation: Literal["vote", "softmax-mean"] = "vote"
) -> ModelSpec:
    """The spec of an ensemble of `members` models of `member`'s architecture (SISA's)."""
    params = {
        "member_arch": member.arch,
        "member_params": dict(member.params),
        "members": members,
        "aggregation": aggregation,
    }
    return ModelSpec("ensemble", params, member.input_shape, member.num_classes)
