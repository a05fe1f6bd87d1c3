"""SISA's learning rate across slices: one optimizer and one schedule per member, over
its cumulative epochs, in training and when unlearning resumes from a middle slice.

`sisa.py` (cleverhans-lab/machine-unlearning) builds one optimizer before its slice
loop and never schedules its rate; with a scenario recipe's schedule as the member's
recipe, the rate of the member's t-th epoch (counted over all its slices) must be the
recipe's rate at epoch t. The expected rates are computed here from the recipe alone,
not with the harness's scheduler code. Each test takes well under a second."""

import math

import pytest
import torch

from mu_bench.api import (
    Budget,
    ModelSpec,
    Split,
    TrainConfig,
    TrainingRun,
    TrainTask,
    UnlearnTask,
    fit,
)
from mu_bench.methods import sisa

N, SHARDS, EPOCHS = 60, 2, 10  # shards of 30 examples: one batch of 64 per epoch


def original_slice_epochs(epochs: int, slices: int) -> list[int]:
    """`sisa.py`: avg = 2R/(R+1) * e / R; slice r trains int((r+1) avg) - int(r avg)."""
    avg = 2 * slices / (slices + 1) * epochs / slices
    return [int((r + 1) * avg) - int(r * avg) for r in range(slices)]


def expected_rates(recipe: TrainConfig, total: int) -> list[float]:
    """The recipe's rate for each of `total` epochs of one uninterrupted run."""
    if recipe.schedule == "multistep":
        return [
            recipe.lr * recipe.gamma ** sum(t >= m for m in recipe.milestones) for t in range(total)
        ]
    if recipe.schedule == "cosine":  # one batch per epoch: the cosine spans `total` steps
        return [recipe.lr * (1 + math.cos(math.pi * t / total)) / 2 for t in range(total)]
    return [recipe.lr] * total  # constant: the original's own (no scheduler at all)


RECIPES = {
    "constant": TrainConfig(optimizer="sgd", lr=0.05, momentum=0.0, epochs=EPOCHS, batch_size=64),
    "multistep": TrainConfig(
        optimizer="sgd",
        lr=0.1,
        epochs=EPOCHS,
        batch_size=64,
        schedule="multistep",
        milestones=(7, 12),
        gamma=0.1,
    ),
    "cosine": TrainConfig(optimizer="sgd", lr=0.1, epochs=EPOCHS, batch_size=64, schedule="cosine"),
}


@pytest.fixture
def rates(monkeypatch):
    """The rate of every SGD step taken, in order."""
    seen: list[float] = []
    real_step = torch.optim.SGD.step

    def step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    return seen


def _common(recipe: TrainConfig) -> dict:
    return dict(
        num_classes=3,
        seed=0,
        rng_seed=11,
        device=torch.device("cpu"),
        recipe=recipe,
        model_spec=ModelSpec("mlp", {"hidden": [4]}, (1, 2, 2), 3),
        generator=torch.Generator().manual_seed(11),
    )


@pytest.mark.parametrize("slices", [3, 5])
@pytest.mark.parametrize("schedule", sorted(RECIPES))
def test_each_epoch_runs_at_the_rate_of_one_schedule_over_the_cumulative_epochs(
    tmp_path, rates, slices, schedule
):
    recipe = RECIPES[schedule]
    torch.manual_seed(0)
    x, y = torch.rand(N, 1, 2, 2), torch.randint(0, 3, (N,))
    method = sisa.SISA(shards=SHARDS, slices=slices)
    common = _common(recipe)
    trained = method.train(
        TrainTask(train_set=Split(x, y), budget=Budget(60), state_dir=tmp_path, **common)
    )
    per_slice = original_slice_epochs(EPOCHS, slices)
    total = sum(per_slice)
    want = expected_rates(recipe, total)
    if schedule == "multistep":  # the drops fall inside the run, past the first slice
        assert per_slice[0] < 7 and total > 12
    # Training: each member's epochs, one step each, member after member.
    assert rates == pytest.approx(want * SHARDS, rel=1e-9)

    # Unlearning: shard 0 loses an example of a middle slice, so it resumes there, at
    # epoch sum(per_slice[:start]) of the run, and shard 1 is kept.
    shards = torch.load(tmp_path / sisa.SHARDS_FILE, weights_only=True)["shards"]
    ends = sisa.slice_ends(len(shards[0]), slices)
    start = slices // 2
    forget = [int(shards[0][ends[start - 1]])]  # the first example new to slice `start`
    retain = sorted(set(range(N)) - set(forget))
    rates.clear()
    task = UnlearnTask(
        model=trained,
        budget=Budget(60),
        retain_set=Split(x[retain], y[retain]),
        trained_dir=tmp_path,
        forget_index=torch.tensor(forget),
        retain_index=torch.tensor(retain),
        **common,
    )
    method.unlearn(task)
    assert task.reported == {
        "shards_retrained": 1.0,
        "shards_dropped": 0.0,
        "shards_active": float(SHARDS),
    }
    done = sum(per_slice[:start])
    assert len(rates) == total - done
    assert rates == pytest.approx(want[done:], rel=1e-9)


@pytest.mark.parametrize(
    "recipe",
    [
        TrainConfig(optimizer="sgd", lr=0.1, epochs=6, batch_size=8, schedule="onecycle"),
        TrainConfig(optimizer="adam", lr=1e-2, epochs=6, batch_size=8, schedule="cosine"),
        TrainConfig(
            optimizer="sgd",
            lr=0.1,
            nesterov=True,
            epochs=6,
            batch_size=8,
            schedule="multistep",
            milestones=(2, 4),
        ),
    ],
    ids=["onecycle-sgd", "cosine-adam", "multistep-nesterov"],
)
def test_a_resumed_run_is_the_run_that_never_stopped(recipe):
    """Two `fit` calls sharing a run, against the same two calls with the run saved,
    reloaded into a fresh model and optimizer in between: identical weights."""
    torch.manual_seed(0)
    x, y = torch.rand(30, 1, 2, 2), torch.randint(0, 3, (30,))
    first, second = Split(x[:20], y[:20]), Split(x, y)
    total = sisa.run_steps([20, 30], [2, 4], recipe.batch_size)
    spec = _common(recipe)["model_spec"]

    def start():
        from mu_bench.api import build_model

        torch.manual_seed(3)
        model = build_model(spec)
        run = TrainingRun(model, recipe, total)
        gen = torch.Generator().manual_seed(5)
        fit(model, first, recipe, generator=gen, epochs=2, run=run)
        return model, run, gen

    straight, run, gen = start()
    fit(straight, second, recipe, generator=gen, epochs=4, run=run)
    assert run.steps == total and run.epochs == 6

    model, run, gen = start()
    saved = {"model": {k: v.clone() for k, v in model.state_dict().items()}}
    saved["run"] = run.state_dict()
    torch.manual_seed(99)
    from mu_bench.api import build_model

    resumed = build_model(spec)
    resumed.load_state_dict(saved["model"])
    again = TrainingRun.resume(resumed, recipe, total, saved["run"])
    assert (again.steps, again.epochs) == (run.steps, run.epochs)
    fit(resumed, second, recipe, generator=gen, epochs=4, run=again)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_fit_refuses_a_rate_for_a_call_that_continues_a_run():
    recipe = RECIPES["constant"]
    model = torch.nn.Linear(4, 3)
    run = TrainingRun(model, recipe, 1)
    data = Split(torch.rand(4, 4), torch.randint(0, 3, (4,)))
    with pytest.raises(ValueError, match="TrainingRun"):
        fit(model, data, recipe, generator=torch.Generator(), lr=0.3, run=run)


def test_shards_are_cut_as_distribution_py_cuts_them():
    """`np.split(arange(n), [t * (n // S) for t in 1..S-1])`: the last shard the largest."""
    parts = sisa.shard_positions(torch.arange(23).numpy(), 5)
    assert [len(p) for p in parts] == [4, 4, 4, 4, 7]
    assert [int(p[0]) for p in parts] == [0, 4, 8, 12, 16]
