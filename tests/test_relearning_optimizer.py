"""The relearning attack steps the recipe's optimizer through torch's functional API
(`relearning._RecipeOptimizer`) instead of a torch.optim optimizer, so that the harness
process never imports torch._dynamo (about 1 s of CPU on `mu-bench submit`'s path): the
parameters must come out bit for bit as `make_optimizer`'s optimizer leaves them (the
gold models' relearning numbers are cached at prepare time), and torch._dynamo must stay
unimported."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from mu_bench.data.split import Split
from mu_bench.evaluation.relearning import RelearnConfig, _fine_tune
from mu_bench.toolkit.recipe import TrainConfig
from mu_bench.toolkit.training import make_optimizer

STEPS = 5
SGD = TrainConfig(
    optimizer="sgd",
    lr=0.05,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    epochs=1,
    batch_size=16,
    label_smoothing=0.1,
)
ADAM = TrainConfig(optimizer="adam", lr=1e-2, weight_decay=5e-4, epochs=1, batch_size=16)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 4)
        )
        self.unused = torch.nn.Parameter(torch.ones(3))  # never gets a gradient: skipped

    def forward(self, x):
        return self.body(x)


def _data(device: str) -> Split:
    g = torch.Generator().manual_seed(1)
    return Split(torch.randn(100, 8, generator=g), torch.randint(0, 4, (100,), generator=g)).to(
        device
    )


def _net(device: str) -> _Net:
    torch.manual_seed(0)
    return _Net().to(device)


def _torch_optim(model, data: Split, recipe: TrainConfig, config: RelearnConfig, seed: int):
    """`_fine_tune` as it was, with `make_optimizer`'s torch.optim optimizer."""
    optimizer = make_optimizer(recipe, model.parameters(), recipe.lr * config.lr_scale)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    done = 0
    while done < config.steps:
        for x, y in data.batches(recipe.batch_size, generator=generator, augment=True):
            loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == config.steps:
                break


def _after(path, recipe: TrainConfig, device: str, lr_scale: float = 1.0) -> dict:
    model, data = _net(device), _data(device)
    torch.manual_seed(7)  # dropout draws: the same for both paths
    path(model, data, recipe, RelearnConfig(steps=STEPS, lr_scale=lr_scale), 3)
    return model.state_dict()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("recipe", [SGD, ADAM], ids=["sgd-nesterov", "adam"])
def test_functional_steps_equal_torch_optims_bit_for_bit(recipe, device):
    new = _after(_fine_tune, recipe, device, lr_scale=0.5)
    old = _after(_torch_optim, recipe, device, lr_scale=0.5)
    assert _same(new, old)
    start = _net(device).state_dict()
    assert not torch.equal(new["body.0.weight"], start["body.0.weight"])  # it did train
    assert torch.equal(new["unused"], start["unused"])


@pytest.mark.parametrize(
    "variant",
    [
        SGD.model_copy(update={"nesterov": False}),
        SGD.model_copy(update={"weight_decay": 0.0}),
        SGD.model_copy(update={"momentum": 0.5}),
        ADAM.model_copy(update={"weight_decay": 0.0}),
    ],
    ids=["no-nesterov", "no-sgd-decay", "other-momentum", "no-adam-decay"],
)
def test_the_comparison_sees_each_hyper_parameter(variant):
    """A path that dropped any of these settings would fail the test above: each changes
    the parameters after the steps."""
    base = SGD if variant.optimizer == "sgd" else ADAM
    assert not _same(_after(_torch_optim, variant, "cpu"), _after(_torch_optim, base, "cpu"))
    assert _same(_after(_fine_tune, variant, "cpu"), _after(_torch_optim, variant, "cpu"))


_CHILD = """
import json, sys
import torch
from mu_bench.data.split import Split
from mu_bench.evaluation.relearning import relearn
from mu_bench.models.registry import build_model
from mu_bench.models.spec import ModelSpec
from mu_bench.toolkit.recipe import TrainConfig

spec = ModelSpec("mlp", {"hidden": [16]}, (8,), 3)
g = torch.Generator().manual_seed(0)
x, y = torch.randn(60, 8, generator=g), torch.randint(0, 3, (60,), generator=g)
state = build_model(spec).state_dict()
seen = {}
for recipe in (
    TrainConfig(optimizer="sgd", lr=0.05, nesterov=True, weight_decay=5e-4, epochs=1, batch_size=8),
    TrainConfig(optimizer="adam", lr=1e-3, epochs=1, batch_size=8),
):
    relearn(state, spec, Split(x[:40], y[:40]), Split(x[40:], y[40:]), recipe)
    seen[recipe.optimizer] = "torch._dynamo" in sys.modules
torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the control
seen["torch.optim.SGD"] = "torch._dynamo" in sys.modules
print(json.dumps(seen))
"""


def test_relearning_does_not_import_torch_dynamo():
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"sgd": False, "adam": False, "torch.optim.SGD": True}
