"""`scissorhands`: trim the forget set's most salient connections, then repair (Wu and
Harandi, "Scissorhands: Scrub Data Influence via Connection Sensitivity in Networks",
ECCV 2024), classification part.

Source: JingWu321/Scissorhands, `Classification/unlearn/SHs/SHs_0.1_cifar10.py` (`snip`,
`re_init_weights`, `project2cone2`, `SHs`), the shared loop of `unlearn/impl.py`, and the
README / `sh/*.sh` settings. Once, before repairing: SNIP connection sensitivity
s = |theta * sum |dCE/dtheta||, the gradient of the forget loss summed over
`prune_batches` forget minibatches (train mode), and the entries with the largest s in
the last layers are re-initialised (weights with PyTorch's default init of their layer,
kaiming_uniform(a=sqrt 5); biases to 0). Then every epoch: a frozen copy of the model
gives the memory gradient g_o = grad of -CE on a forget minibatch over the last layers'
parameters; the repair walks the retain and forget loaders side by side with loss
CE_retain - lambda * CE_forget and, whenever its gradient g has g . g_o < 0, replaces it
over those parameters with GEM's one-memory projection g + v g_o, v = max(margin,
-(g . g_o) / (|g_o|^2 + eps)) with margin 0.5 and eps 1e-3 (the closed form of
`project2cone2`'s QP for one memory), so a repair step does not lower the forget loss to
first order; once the forget loader is exhausted the remaining retain batches are plain
CE steps. SGD(momentum 0.9, weight decay 5e-4), batch 256, augmentation on. Defaults are
the README's CIFAR-10 10% random setting: lr 5e-3, sparsity 0.97 (select the top 3%),
lambda 0.05, 10 epochs, one prune and one memory batch, projection on.

No digits preset: those CIFAR-10 settings forget digit 3 on digits-class3 as they are
(forget accuracy 0.0, retain accuracy 0.99).

Selection (`rank_among = "all"`, the default, the original's `snip`): one global
threshold, the int(sparsity * N)-th smallest saliency of all N parameter entries
(BatchNorm and early layers included; (max - min) / 2 if it equals the extreme), and
the entries above it in the reset layers are re-initialised. Sparsity 0.97 selects the
top 3% of the whole network, of which only the part in the reset layers is reset: the
published sparsities were tuned under this rule. `rank_among = "eligible"` ranks among
the reset layers' own entries instead, so that exactly (1 - sparsity) of them is reset
whatever the rest of the network holds; it makes the fraction reset a property of the
setting rather than of layers the method never touches, which is what a sweep over
architectures needs, but its sparsities are not the paper's.

Layers: "the last layers" are top-level stages of any architecture (`mu_bench.api` stages;
ResNet-18's last three are exactly `layer3`/`layer4`/`fc`, the digits MLP's are its
three Linear layers). `reset_stages` are the stages whose entries may be reset (their
normalisation layers never are), `project_stages` those the memory gradient and the
projection cover (every parameter, BatchNorm included, as the original). They differ
in the original: `SHs_0.1_cifar10.py` resets and projects over `layer3`/`layer4`/`fc`
(3 and 3); `SHs_0.1_cifar100.py` (lines 128, 165) and `SHs_cls0_svhn.py` (129, 146) reset only
`layer4`/`fc` but project over `layer3`/`layer4`/`fc` (2 and 3).

Presets (per setting; every one also projects, one prune and one memory batch, batch
256, momentum 0.9, weight decay 5e-4):
- `cifar10-random`: lr 5e-3, sparsity 0.97, lam 0.05, 10 epochs, reset 3 / project 3:
  `Classification/README.md`, `main.sh` line 6 and `sh/main_0.1_cifar10.sh` line 44
  (with `unlearn/SHs/SHs_0.1_cifar10.py`); the field defaults.
- `cifar100-random`: lr 5e-3, sparsity 0.99, lam 1.0, 10 epochs, reset 2 / project 3:
  `main.sh` line 10 and `sh/main_0.1_cifar100.sh` line 40 (with
  `unlearn/SHs/SHs_0.1_cifar100.py`, lines 128 and 165).
- CIFAR-10 class-wise: the paper and repository give no setting (their only class-wise
  run is SVHN class 0, `sh/main_cls0_svhn.sh` line 27: lr 1e-3, sparsity 0.9, lam 0.1,
  reset 2 / project 3), so `cifar10-class` runs the field defaults.

Deviations, each with its reason:
- The original's name filter (`'bn' not in name`) lets the downsample BatchNorm
  (`downsample.1`) be reset to U(-1, 1) weights and zero biases, evidently by accident of
  naming; here no normalisation layer is reset.
- Weights are redrawn by their layer's own `reset_parameters()` where it has one
  (identical to kaiming_uniform(a=sqrt 5) for Linear and Conv, the original's rule),
  so other layer types get their own default init.
- With `memory_batches` > 1 the gradients of all memory batches are summed into one
  memory; the original (accumulating without zeroing) stacks running sums as several
  constraints for quadprog. One batch, the default and every script's value, is exact.
- It stops early, with the current weights, when the budget runs out.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mu_bench.api import Method, Reads, UnlearnTask, flat_grad, last_stages, stage_parameters

MARGIN = 0.5  # project2cone2's defaults
EPS = 1e-3


def snip_saliency(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """|theta * sum over batches of |dCE/dtheta||, per parameter, in train mode."""
    model.train()
    summed = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        for k, p in model.named_parameters():
            if p.grad is not None:
                summed[k] += p.grad.abs()
    model.zero_grad(set_to_none=True)
    return {k: (p.detach() * summed[k]).abs() for k, p in model.named_parameters()}


def reset_masks(
    saliency: dict[str, torch.Tensor],
    eligible: list[str],
    sparsity: float,
    rank_among: Literal["all", "eligible"] = "all",
) -> dict[str, torch.Tensor]:
    """Boolean masks of the eligible entries to reset: those above the original's global
    threshold, the int(sparsity * N)-th smallest saliency of all N entries ("all"), or
    the top (1 - sparsity) of the eligible entries alone ("eligible")."""
    if rank_among == "eligible":
        flat = torch.cat([saliency[k].flatten() for k in eligible])
        n_reset = len(flat) - int(sparsity * len(flat))
        chosen = torch.zeros(len(flat), dtype=torch.bool, device=flat.device)
        chosen[torch.topk(flat, n_reset).indices] = True
        masks, start = {}, 0
        for k in eligible:
            n = saliency[k].numel()
            masks[k] = chosen[start : start + n].view_as(saliency[k])
            start += n
        return masks
    flat = torch.cat([s.flatten() for s in saliency.values()])
    threshold = flat.kthvalue(max(1, int(sparsity * len(flat)))).values
    if threshold >= flat.max() - 1e-12 or threshold <= flat.min() + 1e-12:
        threshold = (flat.max() - flat.min()) / 2.0  # the original's fallback
    return {k: saliency[k] > threshold for k in eligible}


def _fresh_value(model: nn.Module, name: str) -> torch.Tensor:
    """A new draw for parameter `name`: zeros for a bias, else its layer's default init."""
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    param = getattr(owner, attr)
    if attr == "bias":
        return torch.zeros_like(param)
    if hasattr(owner, "reset_parameters"):
        fresh = copy.deepcopy(owner)
        fresh.reset_parameters()
        return getattr(fresh, attr).detach()
    value = torch.empty_like(param).view(param.shape[0], -1)  # 1-D: as [n, 1], U(-1, 1)
    nn.init.kaiming_uniform_(value, a=math.sqrt(5))
    return value.view_as(param)


@torch.no_grad()
def reinitialise(model: nn.Module, masks: dict[str, torch.Tensor]) -> int:
    """Overwrite the masked entries with fresh values; returns how many were reset."""
    params = dict(model.named_parameters())
    for k, mask in masks.items():
        params[k].copy_(torch.where(mask, _fresh_value(model, k), params[k]))
    return int(sum(m.sum() for m in masks.values()))


def project_one_memory(
    g: torch.Tensor, g_o: torch.Tensor, margin: float = MARGIN, eps: float = EPS
) -> torch.Tensor:
    """GEM's projection for one memory: g + v g_o with v = max(margin, -(g.g_o)/(|g_o|^2
    + eps)) when g.g_o < 0 (the solution of `project2cone2`'s dual QP), else g."""
    dot = torch.dot(g, g_o)
    if dot >= 0:
        return g
    v = torch.clamp(-dot / (torch.dot(g_o, g_o) + eps), min=margin)
    return g + v * g_o


def _write_grad(params: list[nn.Parameter], flat: torch.Tensor) -> None:
    start = 0
    for p in params:
        n = p.numel()
        p.grad = flat[start : start + n].view_as(p).clone()
        start += n


class Scissorhands(Method):
    """Reset the forget set's most salient last-layer weights, then repair (Scissorhands)."""

    reads: ClassVar[Reads] = "both"
    presets: ClassVar[dict] = {
        # Classification/main.sh line 6, sh/main_0.1_cifar10.sh line 44, README.
        "cifar10-random": {"lr": 5e-3, "sparsity": 0.97, "lam": 0.05, "epochs": 10},
        # main.sh line 10, sh/main_0.1_cifar100.sh line 40; SHs_0.1_cifar100.py resets
        # layer4/fc only (line 128) and projects over layer3/layer4/fc (line 165).
        "cifar100-random": {
            "lr": 5e-3,
            "sparsity": 0.99,
            "lam": 1.0,
            "epochs": 10,
            "reset_stages": 2,
            "project_stages": 3,
        },
    }

    sparsity: float = Field(0.97, ge=0, lt=1)  # the top (1 - sparsity) is reset
    lam: float = Field(0.05, ge=0)
    lr: float = Field(5e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    epochs: int = Field(10, ge=0)
    batch_size: int = Field(256, ge=1)
    reset_stages: int = Field(3, ge=1)  # the last stages whose entries may be reset
    project_stages: int = Field(3, ge=1)  # the last stages the projection covers
    prune_batches: int = Field(1, ge=1)
    memory_batches: int = Field(1, ge=1)
    project: bool = True
    rank_among: Literal["all", "eligible"] = "all"

    def _forget_batches(self, task: UnlearnTask, n: int):
        # The original's `next(iter(loader))`: a fresh shuffled first batch each time.
        for _ in range(n):
            yield next(task.forget.batches(self.batch_size, generator=task.generator, augment=True))

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        model = task.model
        reset = last_stages(model, self.reset_stages)
        stages = last_stages(model, self.project_stages)
        eligible = list(stage_parameters(model, reset, skip_norm=True))
        saliency = snip_saliency(model, self._forget_batches(task, self.prune_batches))
        reinitialise(model, reset_masks(saliency, eligible, self.sparsity, self.rank_among))
        projected = list(stage_parameters(model, stages).values())
        opt = torch.optim.SGD(
            model.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        for _ in range(self.epochs):
            g_o = self._memory_gradient(model, stages, task) if self.project else None
            model.train()
            forget = task.forget.batches(self.batch_size, generator=task.generator, augment=True)
            for xr, yr in task.retain.batches(
                self.batch_size, generator=task.generator, augment=True
            ):
                pair = next(forget, None)
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(xr), yr)
                if pair is not None:
                    loss = loss - self.lam * F.cross_entropy(model(pair[0]), pair[1])
                loss.backward()
                if pair is not None and g_o is not None:
                    _write_grad(projected, project_one_memory(flat_grad(projected), g_o))
                opt.step()
                if task.budget.expired:
                    return model.eval()
        return model.eval()

    def _memory_gradient(
        self, model: nn.Module, stages: list[str], task: UnlearnTask
    ) -> torch.Tensor:
        """g_o: the gradient of -CE on forget batches at a frozen copy (eval mode)."""
        proxy = copy.deepcopy(model).eval()
        params = list(stage_parameters(proxy, stages).values())
        for x, y in self._forget_batches(task, self.memory_batches):
            (-F.cross_entropy(proxy(x), y)).backward()
        return flat_grad(params).detach()
