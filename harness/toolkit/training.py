"""Training and inference loops shared by prepare (original and gold models) and methods.

Data stays in tensors on the device and is batched by index (no DataLoader), with
augmentation on the device: an MLP on digits trains 30 epochs in under a second on two
CPU cores. On CUDA, `fit` trains in mixed precision with channels_last (`accel.py`).
`fit` follows a scenario's `[train]` recipe (a `TrainingRun` carries one optimizer and
schedule across several `fit` calls); `predict_logits` is the one batched inference pass
per model that all metrics are computed from.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .accel import Accel

if TYPE_CHECKING:
    from ..budget import Budget
    from ..data.split import Split
    from .recipe import TrainConfig


def warm_up() -> None:
    """Pay torch's one-off lazy imports before any clock starts.

    The first optimizer built in a process imports torch._dynamo (about 1 s on a CPU
    with torch 2.14); without this, that import would be charged to whichever
    `unlearn()` call or training run happened to come first.
    """
    p = torch.zeros(1, requires_grad=True)
    for opt in (torch.optim.SGD([p], lr=0.1, momentum=0.9), torch.optim.Adam([p])):
        p.grad = torch.zeros(1)
        opt.step()


def make_optimizer(recipe: TrainConfig, params: Iterable[nn.Parameter], lr: float | None = None):
    lr = recipe.lr if lr is None else lr
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=recipe.momentum,
            nesterov=recipe.nesterov,
            weight_decay=recipe.weight_decay,
        )
    return torch.optim.Adam(params, lr=lr, weight_decay=recipe.weight_decay)


class _Schedule:
    """Wraps a torch LR scheduler and steps it per batch or per epoch as the recipe needs;
    counts the batches and epochs it has seen (where a resumed run takes up again)."""

    def __init__(self, recipe: TrainConfig, optimizer, total_steps: int):
        total = max(1, total_steps)
        self.per_epoch = recipe.schedule == "multistep"
        self.steps = self.epochs = 0
        if recipe.schedule == "cosine":
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        elif recipe.schedule == "onecycle":
            self.sched = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total
            )
        elif recipe.schedule == "multistep":
            self.sched = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, milestones=list(recipe.milestones), gamma=recipe.gamma
            )
        else:
            self.sched = None

    def after_batch(self) -> None:
        self.steps += 1
        if self.sched is not None and not self.per_epoch:
            self.sched.step()

    def after_epoch(self) -> None:
        self.epochs += 1
        if self.sched is not None and self.per_epoch:
            self.sched.step()


class TrainingRun:
    """One optimizer and one learning-rate schedule for a run that several `fit` calls
    share, as one optimizer built before a loop over data slices would be (SISA trains
    each member slice by slice): momentum carries over from call to call, per-epoch
    milestones count the run's epochs, and per-batch schedules (cosine, one-cycle) span
    `total_steps`, the run's batches over all its calls.

    `state_dict()` between calls, saved with the weights, lets a later process continue
    the run from there with `resume`: the schedule is fast-forwarded to the steps and
    epochs already taken (over the resumed run's own `total_steps`) and the optimizer
    gets back its per-parameter state (momentum buffers, Adam's moments)."""

    def __init__(
        self, model: nn.Module, recipe: TrainConfig, total_steps: int, lr: float | None = None
    ):
        self.optimizer = make_optimizer(recipe, model.parameters(), lr)
        self.schedule = _Schedule(recipe, self.optimizer, total_steps)

    @property
    def steps(self) -> int:
        return self.schedule.steps

    @property
    def epochs(self) -> int:
        return self.schedule.epochs

    def state_dict(self) -> dict:
        """Per-parameter optimizer state (on the CPU) and the steps and epochs taken."""
        state = self.optimizer.state_dict()["state"]
        cpu = {i: {k: _cpu(v) for k, v in s.items()} for i, s in state.items()}
        return {"optimizer_state": cpu, "steps": self.steps, "epochs": self.epochs}

    @classmethod
    def resume(
        cls,
        model: nn.Module,
        recipe: TrainConfig,
        total_steps: int,
        state: dict,
        lr: float | None = None,
    ) -> TrainingRun:
        """The run `state` was taken from, continued on `model` (already holding the
        weights saved with `state`)."""
        run = cls(model, recipe, total_steps, lr)
        sched = run.schedule
        ticks = state["epochs"] if sched.per_epoch else state["steps"]
        with warnings.catch_warnings():  # stepping a scheduler with no optimizer step
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(ticks if sched.sched is not None else 0):
                sched.sched.step()
        sched.steps, sched.epochs = state["steps"], state["epochs"]
        # The hyperparameters stay the fast-forwarded ones (lr, one-cycle's momentum);
        # only the per-parameter state comes from the saved run.
        groups = run.optimizer.state_dict()["param_groups"]
        run.optimizer.load_state_dict({"state": state["optimizer_state"], "param_groups": groups})
        return run


def _cpu(value):
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value


def fit(
    model: nn.Module,
    data: Split,
    recipe: TrainConfig,
    *,
    generator: torch.Generator,
    epochs: int | None = None,
    lr: float | None = None,
    budget: Budget | None = None,
    accel: Accel | None = None,
    run: TrainingRun | None = None,
) -> nn.Module:
    """Train `model` on `data` with the recipe (epochs/lr overridable); stop early at budget.

    `accel` defaults to `Accel.auto`: mixed precision and channels_last on CUDA, plain
    float32 on the CPU. Without `run` (every caller but SISA) the call builds its own
    optimizer and a schedule over its own `epochs`; with `run`, it continues that run's
    optimizer and schedule (which then has its own rate: `lr` must stay None)."""
    epochs = recipe.epochs if epochs is None else epochs
    device = next(model.parameters()).device
    accel = Accel.auto(device, model) if accel is None else accel
    model = accel.prepare(model)
    scaler = accel.scaler(device)
    if run is None:
        optimizer = make_optimizer(recipe, model.parameters(), lr)
        steps = -(-len(data) // recipe.batch_size)
        schedule = _Schedule(recipe, optimizer, steps * epochs)
    elif lr is not None:
        raise ValueError("fit: give `lr` to the TrainingRun, not to a call that continues it")
    else:
        optimizer, schedule = run.optimizer, run.schedule
    model.train()
    for _ in range(epochs):
        for x, y in data.batches(recipe.batch_size, generator=generator, augment=True):
            with accel.autocast(device):
                logits = model(accel.inputs(x))
            # The loss in float32: autocast's low-precision logits, exact log-softmax.
            loss = F.cross_entropy(logits.float(), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            schedule.after_batch()
            if budget is not None and budget.expired:
                return model.eval()
        schedule.after_epoch()
    return model.eval()


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Logits of `model` (eval mode) on `x`, batched on the model's device; float32 on CPU."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0)
