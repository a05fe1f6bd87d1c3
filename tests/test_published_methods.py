"""Unit checks that PBU, Scissorhands, CF-k and EU-k run as published (issue 15): each
on a tiny in-process model, well under a second each. Whole runs on digits-class3
(forgetting and utility) are in test_founding_methods.py and test_baselines.py."""

import pytest
import torch
from torch import nn

from mu_bench.api import Budget, ModelSpec, Split, TrainConfig, UnlearnTask, build_model
from mu_bench.methods import scissorhands as sh
from mu_bench.methods.pbu import PBU


def _task(model: nn.Module, forget: Split, retain: Split | None = None) -> UnlearnTask:
    return UnlearnTask(
        model=model,
        num_classes=3,
        seed=0,
        rng_seed=1,
        device=torch.device("cpu"),
        budget=Budget(60),
        recipe=TrainConfig(lr=1e-3, epochs=1, batch_size=8),
        model_spec=ModelSpec("mlp", {"hidden": [8]}, (4,), 3),
        generator=torch.Generator().manual_seed(1),
        forget_set=forget,
        retain_set=retain,
    )


def test_pbu_takes_every_step_in_train_mode_when_it_checks_the_forget_accuracy(monkeypatch):
    """The stop check's inference pass puts the model in eval mode; each step after it
    must still train BatchNorm on batch statistics (before the fix, every step but an
    epoch's first ran in eval mode)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(40, 4)
    with torch.no_grad():  # labels the model already predicts: the check never stops it
        forget = Split(x, model.eval()(x).argmax(1))
    modes: list[bool] = []
    real_step = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        modes.append(model[1].training)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    # A tiny rate: the check runs after every step and forget accuracy stays near 1.
    method = PBU(lr=1e-9, epochs=2, batch_size=8, stop_forget_acc=0.0)
    out = method.unlearn(_task(model, forget))
    assert modes == [True] * 10  # 2 epochs of 5 batches, each in train mode
    assert not out.training


def test_scissorhands_default_rule_is_one_global_threshold():
    """`snip`: threshold = the int(sparsity * N)-th smallest saliency of all N entries;
    the eligible entries strictly above it are reset, wherever the rest lie."""
    saliency = {
        "early": torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]),
        "b": torch.tensor([10.0, 0.5]),
        "c": torch.tensor([6.0, 7.0, 8.0]),
    }
    # N = 10, int(0.7 * 10) = 7: the 7th smallest is 6.0.
    masks = sh.reset_masks(saliency, ["b", "c"], 0.7)
    assert masks["b"].tolist() == [True, False] and masks["c"].tolist() == [False, True, True]
    # The eligible rule ranks the 5 eligible entries alone: 5 - int(0.7 * 5) = 2 reset.
    among = sh.reset_masks(saliency, ["b", "c"], 0.7, rank_among="eligible")
    assert among["b"].tolist() == [True, False] and among["c"].tolist() == [False, False, True]
    # A threshold at the extreme falls back to (max - min) / 2, as the original's does.
    flat = {"a": torch.ones(4), "b": torch.ones(3)}
    assert all(m.all() for m in sh.reset_masks(flat, ["a", "b"], 0.5).values())
    assert sh.Scissorhands().rank_among == "all"


def test_scissorhands_resets_its_reset_stages_and_projects_over_its_project_stages(monkeypatch):
    """The CIFAR-100 preset: reset only layer4/fc, project over layer3/layer4/fc."""
    torch.manual_seed(0)
    model = build_model(ModelSpec("resnet18", {"width": 4}, (3, 8, 8), 10))
    n = {
        stage: sum(p.numel() for k, p in model.named_parameters() if k.startswith(stage + "."))
        for stage in ("layer3", "layer4", "fc")
    }
    reset_keys: list[str] = []
    projected: list[int] = []
    real_reinit, real_project = sh.reinitialise, sh.project_one_memory

    def reinit(model, masks):
        reset_keys.extend(masks)
        return real_reinit(model, masks)

    def project(g, g_o, *args, **kwargs):
        projected.append(len(g))
        return real_project(g, g_o, *args, **kwargs)

    monkeypatch.setattr(sh, "reinitialise", reinit)
    monkeypatch.setattr(sh, "project_one_memory", project)
    preset = sh.Scissorhands.presets["cifar100-random"]
    assert (preset["reset_stages"], preset["project_stages"]) == (2, 3)
    # sparsity 0.9: this random narrow net's top 1% sits in its early layers.
    method = sh.Scissorhands(**{**preset, "sparsity": 0.9, "epochs": 1, "batch_size": 8})
    forget = Split(torch.rand(8, 3, 8, 8), torch.randint(0, 10, (8,)))
    retain = Split(torch.rand(16, 3, 8, 8), torch.randint(0, 10, (16,)))
    task = _task(model, forget, retain)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    real_sgd = torch.optim.SGD

    def no_training(params, **kwargs):  # keep the weights as the reset left them
        return real_sgd(params, **{**kwargs, "lr": 0.0, "weight_decay": 0.0})

    monkeypatch.setattr(sh.torch.optim, "SGD", no_training)
    method.unlearn(task)
    assert {k.split(".")[0] for k in reset_keys} == {"layer4", "fc"}
    assert not any(".bn" in k or "downsample.1" in k for k in reset_keys)
    params = model.named_parameters()
    changed = {k.split(".")[0] for k, p in params if not torch.equal(p, before[k])}
    assert changed == {"layer4", "fc"}
    assert projected == [n["layer3"] + n["layer4"] + n["fc"]]


@pytest.mark.parametrize(
    ("setting", "values"),
    [
        ("cifar10-random", {"sparsity": 0.97, "lam": 0.05, "lr": 5e-3, "epochs": 10}),
        ("cifar100-random", {"sparsity": 0.99, "lam": 1.0, "lr": 5e-3, "epochs": 10}),
    ],
)
def test_scissorhands_presets_are_the_scripts_values(setting, values):
    method = sh.Scissorhands(**sh.Scissorhands.presets[setting])
    assert {k: getattr(method, k) for k in values} == values


def test_eu_k_runs_the_notebooks_rates_and_trains_layer4_alone(monkeypatch):
    """`small_scale_unlearning.ipynb`: `fk_fientune` keeps `euk_lr` 0.01 through epoch 10,
    then `adjust_learning_rate` sets SCRUB's `sgda_learning_rate` 5e-4 times 0.1 per
    milestone (10, 15, 20) passed; the ResNet branch trains `layer4` and leaves `linear`."""
    from mu_bench.methods.cf_k import CFk
    from mu_bench.methods.eu_k import EUk

    rates: list[float] = []
    real_step = torch.optim.SGD.step

    def step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    torch.manual_seed(0)
    spec = ModelSpec("resnet18", {"width": 4}, (3, 8, 8), 10)
    model = build_model(spec)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    retain = Split(torch.rand(8, 3, 8, 8), torch.randint(0, 10, (8,)))  # one batch an epoch
    task = _task(model, Split(retain.x[:1], retain.y[:1]), retain)
    task = UnlearnTask(
        **{
            **task.__dict__,
            "model_spec": spec,
            "recipe": TrainConfig(lr=0.1, epochs=30, batch_size=8, weight_decay=5e-4),
            "initial_seed": 5,
        }
    )
    EUk().unlearn(task)
    want = [0.01] * 11 + [5e-5] * 5 + [5e-6] * 5 + [5e-7] * 9  # epochs 0-10, 11-15, ...
    assert rates == pytest.approx(want, rel=1e-12)
    changed = {
        k.split(".")[0] for k, p in model.named_parameters() if not torch.equal(p, before[k])
    }
    assert changed == {"layer4"}
    # CF-k: the same rule; its 10 epochs never reach a milestone. Decaying from its own
    # rate is `decay_base_lr = lr`.
    assert [CFk().epoch_lr(e) for e in range(10)] == [0.01] * 10
    own = CFk(lr=0.3, decay_base_lr=0.3)
    assert own.epoch_lr(11) == pytest.approx(0.03) and own.epoch_lr(21) == pytest.approx(3e-4)
