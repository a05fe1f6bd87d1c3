"""Batched training of K models: the exact path is bit-identical to `fit` one by one for
every recipe feature; the stacked path equals it to the tolerance its docstring states."""

import pytest
import torch

from mu_bench.data.forget import make_split
from mu_bench.data.registry import build_dataset
from mu_bench.data.split import Split
from mu_bench.models.registry import build_model, spec_for
from mu_bench.models.spec import ModelSpec
from mu_bench.scenario import load
from mu_bench.toolkit.batched_training import stacked_unsupported, train_batched
from mu_bench.toolkit.training import fit, predict_logits


@pytest.fixture(scope="module")
def digits():
    scenario = load("digits-random10")
    data = build_dataset(scenario.data, scenario.seed)
    split = make_split(scenario.forget, scenario.seed, data)
    retain = Split(data.x_train[split.retain_idx], data.y_train[split.retain_idx])
    return scenario, spec_for(scenario.model, data.input_shape, data.num_classes), retain, data


@pytest.fixture(scope="module")
def small(digits):
    """320 retain examples (5 batches of 64): enough for every code path, and fast."""
    scenario, spec, retain, data = digits
    return scenario, spec, Split(retain.x[:320], retain.y[:320]), data


def _one_by_one(spec, data, recipe, seeds, epochs):
    """What `submission.prepare._trainer` does per model."""
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(spec)
        fit(model, data, recipe, generator=torch.Generator().manual_seed(seed), epochs=epochs)
        models.append(model)
    return models


def _max_difference(a, b) -> float:
    return max(
        (x.double() - y.double()).abs().max().item()
        for ma, mb in zip(a, b, strict=True)
        for x, y in zip(ma.state_dict().values(), mb.state_dict().values(), strict=True)
    )


def _identical(a, b) -> bool:
    return all(
        torch.equal(x, y)
        for ma, mb in zip(a, b, strict=True)
        for x, y in zip(ma.state_dict().values(), mb.state_dict().values(), strict=True)
    )


def _cases(scenario, spec):
    base = scenario.train
    images = torch.Generator().manual_seed(0)
    signals = Split(torch.randn(120, 1, 40, generator=images), torch.arange(120) % 10)
    tiny_images = Split(
        torch.rand(24, 3, 12, 12, generator=images), torch.arange(24) % 10, "crop-flip"
    )
    return {
        "mlp-adam": (spec, None, base),
        # Dropout (the global generator per model), SGD with Nesterov momentum and weight
        # decay, a per-epoch schedule, label smoothing.
        "mlp-dropout-sgd": (
            ModelSpec("mlp", {"hidden": [32], "dropout": 0.3}, spec.input_shape, 10),
            None,
            base.model_copy(
                update={
                    "optimizer": "sgd",
                    "lr": 0.05,
                    "nesterov": True,
                    "weight_decay": 1e-3,
                    "schedule": "multistep",
                    "milestones": (1,),
                    "label_smoothing": 0.1,
                }
            ),
        ),
        "mlp-onecycle": (
            ModelSpec("mlp", {"hidden": [32, 16]}, spec.input_shape, 10),
            None,
            base.model_copy(update={"schedule": "onecycle", "weight_decay": 1e-4}),
        ),
        "cnn1d-cosine": (
            ModelSpec("cnn1d", {"channels": 6}, (1, 40), 10),
            signals,
            base.model_copy(update={"schedule": "cosine", "batch_size": 50}),
        ),
        # BatchNorm running statistics and per-model crop-flip augmentation draws.
        "resnet-bn-crop-flip": (
            ModelSpec("resnet18", {"width": 2}, (3, 12, 12), 10),
            tiny_images,
            base.model_copy(update={"optimizer": "sgd", "lr": 0.05, "batch_size": 16}),
        ),
    }


@pytest.mark.parametrize(
    "case", ["mlp-adam", "mlp-dropout-sgd", "mlp-onecycle", "cnn1d-cosine", "resnet-bn-crop-flip"]
)
def test_exact_path_is_bit_identical_to_fit_one_by_one(small, case):
    scenario, spec, retain, _ = small
    model_spec, data, recipe = _cases(scenario, spec)[case]
    data = retain if data is None else data
    seeds = [11, 12]
    run = train_batched(model_spec, data, recipe, seeds, exact=True, epochs=2)
    assert run.path == "exact"
    assert _identical(run.models, _one_by_one(model_spec, data, recipe, seeds, 2))


@pytest.mark.parametrize("case", ["mlp-adam", "mlp-onecycle", "cnn1d-cosine"])
def test_stacked_path_equals_fit_to_a_tolerance_after_an_epoch(digits, case):
    """A whole digits epoch (21 steps) for the MLPs."""
    scenario, spec, retain, _ = digits
    model_spec, data, recipe = _cases(scenario, spec)[case]
    data = retain if data is None else data
    seeds = [3, 4]
    run = train_batched(model_spec, data, recipe, seeds, epochs=1)
    assert run.path == "stacked"
    reference = _one_by_one(model_spec, data, recipe, seeds, 1)
    difference = _max_difference(run.models, reference)
    assert difference < 1e-5
    assert not _identical(run.models, reference) or difference == 0.0


def test_stacked_sgd_equals_fit_to_a_tolerance(small):
    scenario, spec, retain, _ = small
    recipe = scenario.train.model_copy(
        update={"optimizer": "sgd", "lr": 0.05, "nesterov": True, "weight_decay": 5e-4}
    )
    run = train_batched(spec, retain, recipe, [1, 2], epochs=2)
    assert run.path == "stacked"
    assert _max_difference(run.models, _one_by_one(spec, retain, recipe, [1, 2], 2)) < 1e-5


@pytest.mark.slow
def test_stacked_full_recipe_predicts_as_fit_does(digits):
    """After the whole 30-epoch recipe, rounding has been amplified (weights differ by up
    to about 1e-2 on some seeds) but the models are the same models: their test
    predictions agree and their accuracies are equal to within one example."""
    scenario, spec, retain, data = digits
    seeds = [3, 4]
    run = train_batched(spec, retain, scenario.train, seeds)
    reference = _one_by_one(spec, retain, scenario.train, seeds, None)
    for batched, alone in zip(run.models, reference, strict=True):
        a, b = predict_logits(batched, data.x_test), predict_logits(alone, data.x_test)
        assert (a.argmax(1) == b.argmax(1)).float().mean() >= 0.99
        acc_a = (a.argmax(1) == data.y_test).float().mean()
        acc_b = (b.argmax(1) == data.y_test).float().mean()
        assert abs(acc_a - acc_b) <= 1 / len(data.y_test) + 1e-9
        assert acc_a > 0.9


def test_stacked_path_is_deterministic(small):
    _, spec, retain, _ = small
    recipe = small[0].train
    a = train_batched(spec, retain, recipe, [7, 8], epochs=1)
    b = train_batched(spec, retain, recipe, [7, 8], epochs=1)
    assert _identical(a.models, b.models)


def test_path_choice(small):
    _, spec, retain, _ = small
    recipe = small[0].train
    dropout = ModelSpec("mlp", {"hidden": [8], "dropout": 0.5}, spec.input_shape, 10)
    run = train_batched(dropout, retain, recipe, [1, 2], epochs=1)
    assert run.path == "exact" and "dropout" in run.note
    assert train_batched(spec, retain, recipe, [1], epochs=1).path == "sequential"
    assert "CPU only" in stacked_unsupported(spec, "cuda")
    assert stacked_unsupported(ModelSpec("resnet18", {}, (3, 32, 32), 10), "cpu")
    assert stacked_unsupported(spec, "cpu") is None
    # The models come back in seed order, in eval mode, with their own initialisation.
    torch.manual_seed(1)
    first = build_model(dropout)
    assert not run.models[0].training
    assert not torch.equal(first[1].weight, run.models[0][1].weight)  # it did train
