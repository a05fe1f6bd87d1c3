"""Stage selection generalises the original code's ResNet name filters to any model."""

import pytest
import torch

from mu_bench.api import ModelSpec, build_model
from mu_bench.toolkit.layers import last_stages, stage_parameters, stages


def test_resnet_last_three_stages_are_the_original_filter():
    model = build_model(ModelSpec("resnet18", {"width": 4}, (3, 32, 32), 10))
    assert stages(model) == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert last_stages(model, 3) == ["layer3", "layer4", "fc"]
    with_norm = stage_parameters(model, ["layer4"])
    without = stage_parameters(model, ["layer4"], skip_norm=True)
    assert "layer4.0.bn1.weight" in with_norm and "layer4.0.bn1.weight" not in without
    assert "layer4.0.conv1.weight" in without
    total = sum(p.numel() for p in model.layer4.parameters())
    assert sum(p.numel() for p in with_norm.values()) == total


def test_mlp_stages_are_its_linear_layers():
    model = build_model(ModelSpec("mlp", {"hidden": [8, 8]}, (64,), 10))
    assert stages(model) == ["1", "3", "5"]
    assert last_stages(model, 1) == ["5"]
    assert last_stages(model, 9) == ["1", "3", "5"]
    params = stage_parameters(model, ["5"])
    assert set(params) == {"5.weight", "5.bias"}
    assert params["5.weight"] is model[5].weight


def test_bad_stage_names_and_k():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown stages"):
        stage_parameters(model, ["fc"])
    with pytest.raises(ValueError):
        last_stages(model, 0)
