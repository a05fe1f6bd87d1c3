"""Train K models of one architecture on one training set at once (prepare's gold,
holdout and IN models), each with its own seed, as `training.fit` trains them one by one.

Model k is what `submission.prepare._trainer` makes of seed k: `torch.manual_seed(seed)` then
`build_model(spec)` gives its initial weights, and `torch.Generator().manual_seed(seed)`
its shuffling order (`Split.batches`: one `randperm` per epoch, then the augmentation of
each batch, from that generator). It follows the scenario's recipe as `fit` does: Adam,
or SGD with momentum, Nesterov and weight decay; constant, cosine, multistep or one-cycle
schedules (`training._Schedule`, the same per-batch or per-epoch steps); label smoothing;
augmentation. The K models' parameters are stacked along a new first dimension and one
optimizer steps all of them: every optimizer and schedule update is elementwise with one
learning rate for all, so each model's slice moves exactly as its own optimizer would.

Two paths, chosen by `exact`:
- `exact=False` (default), "stacked": the forward and backward passes of all K models are
  single batched kernels (`baddbmm` for linear layers, a grouped `conv1d` for the 1-D
  convolutions, one cross-entropy over all K batches) and the optimizer is torch's fused
  Adam/SGD. For `mlp` (without dropout) and `cnn1d`. The weights equal sequential `fit`'s
  to a tolerance, not bit for bit: batched matrix products sum in another order (e.g. the
  last layer's weight gradient), and the fused optimizer rounds differently. After one
  digits epoch the weights differ by about 1e-7 (the test allows 1e-5); the full 30-epoch
  recipe amplifies rounding (weights up to 2e-2 apart on one seed of eight, logits 3e-2)
  yet all eight models made exactly their sequential twins' test predictions, with the
  same accuracy (the slow test asserts 99% agreement and accuracy within one example).
- `exact=True`, "exact": each model's forward and backward run on its own slice of the
  stacked parameters (`torch.func.functional_call` on `unbind` views: the same kernels,
  shapes and strides as `fit`), only the optimizer (torch's default single-tensor
  implementation, elementwise) is shared. Bit-identical to sequential `fit` for any
  architecture (dropout draws from the global generator, which is restored per model to
  the state the model's own `manual_seed` left; BatchNorm running statistics update in
  place in the stacked buffers); the test asserts `torch.equal` on every weight.
The stacked path asked of another architecture (or of an MLP with dropout) takes the
exact one. On a CUDA device, where `fit` trains in mixed precision with a loss scaler per
model and channels_last (not reproduced here, and untested without a GPU), the models are
trained one by one with `fit`. `path` says which ran.

Speed (benchmarks/batched_training.py: per model, full recipe, medians of side-by-side
runs on this project's 2-core CPU, shared with other jobs). Digits MLP on 2 threads: one
by one 0.8-1.1 s; stacked 0.31-0.38 s, 2.1x at K = 8, 2.8x at K = 32, 3.3x at K = 64
(its matrix products run at 90-110 GFLOP/s, `fit`'s at about 25); exact 0.9 s, 1.0x (it
saves the optimizer's and the loss's per-model work, not the matrix products'). On 1
thread: stacked 1.6-2.7x, exact 1.1-1.2x. MNIST-1D's cnn1d on 2 threads: stacked 2.0x
(K = 8) and 2.3x (K = 32), exact 1.4-1.6x. A batched `prepare digits-random10` with 32
models per side (1 + 96 models) takes as long as today's 1 + 24 one by one (34 s).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..data.augment import apply_augment
from ..models.registry import build_model
from .training import _Schedule, fit, warm_up

if TYPE_CHECKING:
    from ..data.split import Split
    from ..models.spec import ModelSpec
    from .recipe import TrainConfig


@dataclass(frozen=True)
class BatchedRun:
    models: list[nn.Module]  # trained, eval mode, on the device, in seed order
    seconds: float  # wall time of training all of them (initialisation excluded)
    path: str  # "stacked", "exact" or "sequential"
    note: str = ""  # why the stacked path was not taken, when it was asked for


def stacked_unsupported(spec: ModelSpec, device: torch.device | str) -> str | None:
    """Why the stacked path cannot train this model here, or None when it can."""
    if torch.device(device).type != "cpu":
        return "batched training runs on the CPU only (fit uses mixed precision on CUDA)"
    if spec.arch == "mlp" and not spec.params.get("dropout"):
        return None
    if spec.arch == "cnn1d":
        return None
    return f"no stacked forward for architecture '{spec.arch}' {spec.params or ''}".strip()


def train_batched(
    spec: ModelSpec,
    data: Split,
    recipe: TrainConfig,
    seeds: Sequence[int],
    *,
    device: torch.device | str = "cpu",
    exact: bool = False,
    epochs: int | None = None,
) -> BatchedRun:
    """Train one model per seed on `data` (already on `device`) with the recipe."""
    device = torch.device(device)
    seeds = list(seeds)
    epochs = recipe.epochs if epochs is None else epochs
    if device.type != "cpu" or len(seeds) < 2:
        why = stacked_unsupported(spec, device) if len(seeds) > 1 else ""
        return _sequential(spec, data, recipe, seeds, device, epochs, why or "")
    note = "" if exact else (stacked_unsupported(spec, device) or "")
    exact = exact or bool(note)
    models, states = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build_model(spec).to(device))
        states.append(torch.get_rng_state())  # where this model's dropout draws start
    warm_up()
    start = time.perf_counter()
    trainer = _Exact(models, states) if exact else _Stacked(models, spec.arch)
    trainer.run(data, recipe, seeds, epochs)
    seconds = time.perf_counter() - start
    return BatchedRun(trainer.unstack(), seconds, "exact" if exact else "stacked", note)


def _sequential(spec, data, recipe, seeds, device, epochs, why: str) -> BatchedRun:
    models = []
    warm_up()
    seconds = 0.0
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(spec).to(device)
        start = time.perf_counter()
        fit(model, data, recipe, generator=torch.Generator().manual_seed(seed), epochs=epochs)
        seconds += time.perf_counter() - start
        models.append(model.eval())
    return BatchedRun(models, seconds, "sequential", why)


class _Trainer:
    """Stacked parameters, the shared optimizer and schedule, and the per-seed batches."""

    fused: bool

    def __init__(self, models: list[nn.Module]):
        self.models = models
        self.k = len(models)
        names = [n for n, _ in models[0].named_parameters()]
        self.params = {
            n: self.layout(n, torch.stack([dict(m.named_parameters())[n].detach() for m in models]))
            .contiguous()
            .requires_grad_()
            for n in names
        }
        self.buffers = {
            n: torch.stack([dict(m.named_buffers())[n] for m in models]).clone()
            for n, _ in models[0].named_buffers()
        }

    def layout(self, name: str, stacked: torch.Tensor) -> torch.Tensor:
        """How parameter `name`, stacked (K, *shape), is held while training (its own
        inverse: applied again on the way back)."""
        return stacked

    def optimizer(self, recipe: TrainConfig) -> torch.optim.Optimizer:
        # `training.make_optimizer`'s settings; fused kernels on the stacked path only.
        params = list(self.params.values())
        fused = True if self.fused else None
        if recipe.optimizer == "sgd":
            return torch.optim.SGD(
                params,
                lr=recipe.lr,
                momentum=recipe.momentum,
                nesterov=recipe.nesterov,
                weight_decay=recipe.weight_decay,
                fused=fused,
            )
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=fused)

    def run(self, data: Split, recipe: TrainConfig, seeds: list[int], epochs: int) -> None:
        optimizer = self.optimizer(recipe)
        n, bs = len(data), recipe.batch_size
        schedule = _Schedule(recipe, optimizer, -(-n // bs) * epochs)
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        for _ in range(epochs):
            # Each model's `Split.batches`: its permutation first, then per batch its
            # augmentation, all from its own generator.
            orders = torch.stack([torch.randperm(n, generator=g) for g in generators])
            orders = orders.to(data.x.device)
            for start in range(0, n, bs):
                idx = orders[:, start : start + bs]  # (K, b)
                x = data.x[idx]
                if data.augment != "none":
                    x = torch.stack(
                        [apply_augment(x[k], data.augment, g) for k, g in enumerate(generators)]
                    )
                loss = self.loss(x, data.y[idx], recipe.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.after_batch()
            schedule.after_epoch()

    def loss(self, x: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
        raise NotImplementedError

    def unstack(self) -> list[nn.Module]:
        with torch.no_grad():
            for k, model in enumerate(self.models):
                for n, p in model.named_parameters():
                    p.copy_(self.layout(n, self.params[n])[k])
                for n, b in model.named_buffers():
                    b.copy_(self.buffers[n][k])
        return [m.eval() for m in self.models]


class _Exact(_Trainer):
    """Per-model forward and backward on views of the stacked parameters: fit's kernels."""

    fused = False

    def __init__(self, models: list[nn.Module], rng_states: list[torch.Tensor]):
        super().__init__(models)
        self.rng_states = rng_states
        self.uses_rng = any(isinstance(m, nn.Dropout) and m.p > 0 for m in models[0].modules())
        for m in models:
            m.train()

    def loss(self, x: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
        params = {n: p.unbind(0) for n, p in self.params.items()}
        buffers = {n: b.unbind(0) for n, b in self.buffers.items()}
        outer = torch.get_rng_state() if self.uses_rng else None
        total = None
        for k, model in enumerate(self.models):
            state = {n: v[k] for n, v in params.items()} | {n: v[k] for n, v in buffers.items()}
            if self.uses_rng:  # model k's dropout continues its own global stream
                torch.set_rng_state(self.rng_states[k])
            logits = torch.func.functional_call(model, state, (x[k],))
            if self.uses_rng:
                self.rng_states[k] = torch.get_rng_state()
            loss = F.cross_entropy(logits.float(), y[k], label_smoothing=smoothing)
            # Each model's loss gets gradient 1, as its own `loss.backward()` gives it.
            total = loss if total is None else total + loss
        if outer is not None:
            torch.set_rng_state(outer)
        return total


class _Stacked(_Trainer):
    """All K forward/backward passes as batched kernels; fused optimizer."""

    fused = True

    def __init__(self, models: list[nn.Module], arch: str):
        self.arch = arch
        self.linear_weights = {
            f"{name}.weight" for name, m in models[0].named_modules() if isinstance(m, nn.Linear)
        }
        super().__init__(models)
        if arch == "cnn1d":
            self.convs = [
                (name, c.stride[0], c.padding[0])
                for name, c in models[0].named_modules()
                if isinstance(c, nn.Conv1d)
            ]
        else:
            self.linears = [n.removesuffix(".weight") for n in self.params if n.endswith(".weight")]

    def layout(self, name: str, stacked: torch.Tensor) -> torch.Tensor:
        # Linear weights held as (K, in, out): `baddbmm(b, x, w)` then returns their
        # gradient in that layout, with no copy into the parameter's (a third of a step's
        # time when held as (K, out, in) and transposed in the product).
        return stacked.mT if name in self.linear_weights else stacked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.k
        p = self.params
        if self.arch == "cnn1d":
            b = x.shape[1]
            h = x.transpose(0, 1).reshape(b, -1, x.shape[-1])  # (b, K * C, L)
            for name, stride, padding in self.convs:
                w = p[f"{name}.weight"]  # (K, out, in, kernel): K groups of one conv each
                h = F.conv1d(
                    h,
                    w.reshape(-1, *w.shape[2:]),
                    p[f"{name}.bias"].reshape(-1),
                    stride=stride,
                    padding=padding,
                    groups=k,
                ).relu()
            h = h.reshape(b, k, -1).transpose(0, 1)  # (K, b, C * L'), as flatten(1)
            return torch.baddbmm(p["linear.bias"][:, None], h, p["linear.weight"])
        h = x.flatten(2)
        for i, name in enumerate(self.linears):
            h = torch.baddbmm(p[f"{name}.bias"][:, None], h, p[f"{name}.weight"])
            if i < len(self.linears) - 1:
                h = h.relu()
        return h

    def loss(self, x: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
        logits = self.forward(x)  # (K, b, classes)
        per_example = F.cross_entropy(
            logits.flatten(0, 1), y.flatten(), reduction="none", label_smoothing=smoothing
        )
        return per_example.view(self.k, -1).mean(dim=1).sum()  # each model's mean loss
