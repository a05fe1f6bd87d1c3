"""Relearning attack: does forgetting survive a little fine-tuning?

Source: Siddiqui et al., "From Dormant to Deleted: Tamper-Resistant Unlearning Through
Weight-Space Regularization" (arXiv 2505.22310, 2025), code shoaibahmed/vision_relearning
`vision_unlearner.py` (the `--generate-relearning-grid` mode that `scripts/train.sh`
sets up). Unlearned models whose forget accuracy looks like a retrained model's recover
it after fine-tuning on the retain set alone, or on the retain set plus a few forget
examples, while a model retrained without the forget set (gold) does not; the attack
reports the forget accuracy after fine-tuning, against the gold models' under the same
steps.

The paper's protocol: the forget set is permuted with the seed
(`np.random.default_rng(seed).permutation`); its first 20% may be relearned, and forget
accuracy is measured on the other 80% (the same examples whatever is relearned). The
relearn set is the retain set plus the first k forget examples of that permutation
(k = 0, 1, 5, 10, 50, 100 in the grid; 10% of the forget set by default), shuffled
together. Fine-tuning: Adam, lr 1e-5 (a tenth of its training lr), no weight decay, batch
128, cosine decay to a tenth of the lr, 10 epochs of the training set.

Here (`relearn`): the model is rebuilt by the harness from its weights and the
scenario's `ModelSpec` (no plugin code runs); the same permutation and 20% / 80% split;
two attacks from the same weights: retain only (k = 0) and retain plus a slice of
`slice_fraction` = 10% of the forget set (the paper's `fraction_to_relearn` default; at
least one example, within the relearnable 20%). Fine-tuning follows the scenario's recipe
(its optimizer with momentum, Nesterov and weight decay, its batch size, label smoothing
and augmentation) at the recipe's lr times `lr_scale`, for a fixed `steps` optimizer
steps at a constant lr, batches drawn from `Split.batches` with a generator seeded by
`seed` (so every model compared under one seed sees the same batches). The optimizer is
`make_optimizer`'s, stepped through torch's functional API (`_RecipeOptimizer`: torch's
own update code and state, bit for bit the same steps): building a `torch.optim`
optimizer imports torch._dynamo, about 1 s of CPU that `mu-bench submit` would otherwise
pay in its own process on the way to the first report.
Deviations, for cost: `steps` = 10 by default (half an epoch of digits' retain set at
batch 64) instead of 10 epochs, hence the recipe's lr instead of a tenth of it and no
decay (a tenth for a few steps barely moves a model); float32 on every device. Both
attacks together cost 4% of training the model once (10 steps each against the recipe's
630; 25 steps: 10%, measured side by side), about 0.05 s per digits MLP on two quiet
cores (benchmarks/relearning.py prints the seconds per model).

Measured on digits-class3 (benchmarks/relearning.py, 3 seeds, 10 steps): gold models stay
at 0 forget accuracy under both attacks; gradient-ascent, also at 0 before, comes back to
0.66 with 14 forget images (0.97 at 25 steps); scrub and salun stay at 0; noop keeps 0.92
(retain only) and 0.97. On digits-random10 every model, gold included, stays near 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from ..data.split import Split
from ..models.registry import build_model
from ..toolkit.training import predict_logits

if TYPE_CHECKING:
    from ..models.spec import ModelSpec
    from ..toolkit.recipe import TrainConfig

RELEARNABLE = 0.2  # the paper's share of the forget set that may be relearned


@dataclass(frozen=True)
class RelearnConfig:
    steps: int = 10
    lr_scale: float = 1.0
    slice_fraction: float = 0.1  # of the forget set, relearned with the retain set
    batch_size: int | None = None  # default: the recipe's


@dataclass(frozen=True)
class RelearnResult:
    before: float  # forget accuracy on the evaluated forget examples, before
    retain_only: float  # after fine-tuning on the retain set
    with_slice: float  # after fine-tuning on the retain set plus the forget slice
    slice_size: int
    evaluated: int  # forget examples the accuracies are measured on


def forget_partition(n: int, seed: int, slice_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(relearned slice, evaluated) indices into a forget set of n examples."""
    if n < 2:
        raise ValueError(f"relearning needs at least 2 forget examples, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    reserved = max(1, int(RELEARNABLE * n))
    k = min(reserved, max(1, int(slice_fraction * n)))
    return order[:k], order[reserved:]


def _accuracy(model: torch.nn.Module, data: Split) -> float:
    logits = predict_logits(model, data.x)
    return float((logits.argmax(1) == data.y.cpu()).float().mean())


class _RecipeOptimizer:
    """`make_optimizer(recipe, params, lr)` (torch.optim.SGD with the recipe's momentum,
    Nesterov and weight decay, or torch.optim.Adam with its weight decay), without the
    `torch.optim.Optimizer` object.

    Why: constructing any torch.optim optimizer (its `add_param_group` is wrapped in
    `torch._disable_dynamo`) and calling its `step` (`_use_grad_for_differentiable`)
    import torch._dynamo, about 1.0 s of CPU with torch 2.14 that the relearning attack
    would be the first to pay in the harness process, on `mu-bench submit`'s critical
    path (methods pay it in their own workers, `training.warm_up`). Torch's functional
    API (`torch.optim.sgd.sgd`, `torch.optim.adam.adam`) imports nothing.

    This is not a re-implementation: `step` calls the functions the optimizers' own
    `step` calls, with the arguments they pass (dampening 0, no maximize or amsgrad,
    Adam's default betas and eps, foreach and fused left to torch's default resolution),
    and keeps their per-parameter state as they do (the momentum buffer that `sgd`
    creates on the first step; Adam's `exp_avg`, `exp_avg_sq` and a scalar `step` tensor
    on the CPU), under `no_grad` as their `step` runs: the parameters come out bit for bit
    the same (tests/test_relearning_optimizer.py), so the gold models' relearning
    numbers cached at prepare time stay valid."""

    def __init__(self, recipe: TrainConfig, params, lr: float):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")  # as torch.optim's
        if recipe.optimizer == "sgd" and recipe.nesterov and recipe.momentum <= 0:
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.recipe, self.lr = recipe, lr
        self.params: list[torch.Tensor] = list(params)
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        """`Optimizer.zero_grad(set_to_none=True)`."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        params = [p for p in self.params if p.grad is not None]
        grads = [p.grad for p in params]
        if self.recipe.optimizer == "sgd":
            self._sgd(params, grads)
        else:
            self._adam(params, grads)

    def _sgd(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        # torch.optim.SGD.step: buffers only with momentum (`sgd` creates them on the
        # first step, in the list); no foreach or fused given, so torch chooses.
        momentum = self.recipe.momentum
        buffers = [self.state.get(p, {}).get("momentum_buffer") for p in params]
        sgd(
            params,
            grads,
            buffers if momentum != 0 else [],
            has_sparse_grad=any(g.is_sparse for g in grads),
            foreach=None,
            fused=None,
            weight_decay=self.recipe.weight_decay,
            momentum=momentum,
            lr=self.lr,
            dampening=0,
            nesterov=self.recipe.nesterov,
            maximize=False,
        )
        if momentum != 0:
            for p, buf in zip(params, buffers, strict=True):
                self.state.setdefault(p, {})["momentum_buffer"] = buf

    def _adam(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        # torch.optim.Adam._init_group's state (not capturable, not fused: the step
        # count is a CPU scalar of the default float dtype) and the arguments of its step.
        step_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        for p in params:
            if p not in self.state:
                self.state[p] = {
                    "step": torch.tensor(0.0, dtype=step_dtype, device="cpu"),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
        states = [self.state[p] for p in params]
        adam(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            [s["step"] for s in states],
            foreach=None,
            capturable=False,
            differentiable=False,
            fused=None,
            grad_scale=None,
            found_inf=None,
            has_complex=any(torch.is_complex(p) for p in params),
            decoupled_weight_decay=False,
            amsgrad=False,
            beta1=0.9,
            beta2=0.999,
            lr=self.lr,
            weight_decay=self.recipe.weight_decay,
            eps=1e-8,
            maximize=False,
        )


def _fine_tune(
    model: torch.nn.Module, data: Split, recipe: TrainConfig, config: RelearnConfig, seed: int
) -> None:
    optimizer = _RecipeOptimizer(recipe, model.parameters(), recipe.lr * config.lr_scale)
    generator = torch.Generator().manual_seed(seed)
    batch = config.batch_size or recipe.batch_size
    model.train()
    done = 0
    while done < config.steps:
        for x, y in data.batches(batch, generator=generator, augment=True):
            loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == config.steps:
                break


def relearn(
    state: dict[str, torch.Tensor],
    spec: ModelSpec,
    retain: Split,
    forget: Split,
    recipe: TrainConfig,
    *,
    seed: int = 0,
    config: RelearnConfig | None = None,
    device: torch.device | str = "cpu",
) -> RelearnResult:
    """Forget accuracy before and after both relearning attacks on the model whose
    weights are `state` (a state dict of `spec`'s architecture, already validated)."""
    config = config or RelearnConfig()
    if config.steps < 1:
        raise ValueError(f"steps must be at least 1, got {config.steps}")
    sliced, evaluated = forget_partition(len(forget), seed, config.slice_fraction)
    device = torch.device(device)
    retain = retain.to(device)
    forget = forget.to(device)
    held = Split(forget.x[evaluated], forget.y[evaluated], forget.augment)
    relearn_sets = {
        "retain_only": retain,
        "with_slice": Split(
            torch.cat([retain.x, forget.x[sliced]]),
            torch.cat([retain.y, forget.y[sliced]]),
            retain.augment,
        ),
    }

    def rebuilt() -> torch.nn.Module:
        model = build_model(spec)  # its random initialisation is overwritten at once
        model.load_state_dict(state)
        return model.to(device)

    after = {}
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # seeded draws; the caller's RNG untouched
        for name, data in relearn_sets.items():
            model = rebuilt()
            torch.manual_seed(seed)  # dropout, if any: the same draws for every model
            _fine_tune(model, data, recipe, config, seed)
            after[name] = _accuracy(model, held)
        before = _accuracy(rebuilt(), held)
    return RelearnResult(
        before=before,
        retain_only=after["retain_only"],
        with_slice=after["with_slice"],
        slice_size=len(sliced),
        evaluated=len(evaluated),
    )


# The report's per-model names (catalogue.py) of the two attacks' forget accuracies.
RELEARN_METRICS = {"with_slice": "relearn_forget_acc", "retain_only": "relearn_retain_only_acc"}


def relearn_metrics(
    state: dict[str, torch.Tensor],
    spec: ModelSpec,
    retain: Split,
    forget: Split,
    recipe: TrainConfig,
    *,
    steps: int,
    slice_fraction: float,
    seed: int,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """`relearn`'s two forget accuracies under the report's metric names."""
    result = relearn(
        state,
        spec,
        retain,
        forget,
        recipe,
        seed=seed,
        config=RelearnConfig(steps=steps, slice_fraction=slice_fraction),
        device=device,
    )
    return {name: getattr(result, attack) for attack, name in RELEARN_METRICS.items()}
