"""CIFAR-10/100 scenarios on the CPU: SalUn's split protocol, torchvision loading from
tiny files in the exact on-disk format, the ResNet-18 layout, the mixed-precision
training path, missing data, `mu-bench download`, and a tiny variant of each CIFAR
scenario end to end through `mu-bench submit`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mu_bench.api import ModelSpec, build_model
from mu_bench.data.cifar import salun_forget_draw, salun_split
from mu_bench.data.forget import make_split
from mu_bench.data.registry import build_dataset
from mu_bench.errors import UsageError
from mu_bench.scenario import load

from .cifar_files import tiny_variant, write_cifar10, write_cifar100
from .conftest import cli, cli_json

CIFAR_SCENARIOS = ("cifar10-random10", "cifar10-class", "cifar100-random10")


def _build(scenario):
    return build_dataset(scenario.data, scenario.seed)


def _salun_reference(labels: np.ndarray, seed: int, num_forget: int):
    """SalUn's Classification/dataset.py steps, written as they are there."""
    rng = np.random.RandomState(seed)
    valid_idx = []
    for i in range(max(labels) + 1):
        class_idx = np.where(labels == i)[0]
        valid_idx.append(rng.choice(class_idx, int(0.1 * len(class_idx)), replace=False))
    valid_idx = np.hstack(valid_idx)
    train_idx = list(set(range(len(labels))) - set(valid_idx))
    train_labels = labels[train_idx]
    # replace_class(class_to_replace=-1, num_indexes_to_replace=N, seed=seed - 1)
    indexes = np.flatnonzero(np.ones_like(train_labels))
    forget = np.random.RandomState(seed - 1).choice(indexes, size=num_forget, replace=False)
    return np.array(train_idx), valid_idx, forget


def test_salun_split_on_full_size_cifar_labels():
    labels = np.random.default_rng(7).permutation(np.repeat(np.arange(10), 5000))
    train, valid = salun_split(labels, 0.1, seed=2)
    assert len(train) == 45000 and len(valid) == 5000
    assert np.bincount(labels[valid]).tolist() == [500] * 10
    assert np.bincount(labels[train]).tolist() == [4500] * 10
    forget = salun_forget_draw(2)(45000, 4500)
    assert len(np.unique(forget)) == 4500 and forget.max() < 45000

    ref_train, ref_valid, ref_forget = _salun_reference(labels, 2, 4500)
    assert np.array_equal(train, ref_train)  # same images, same order
    assert np.array_equal(np.sort(valid), np.sort(ref_valid))
    assert np.array_equal(forget, ref_forget)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    written = write_cifar10(root, train_per_class=20, test_per_class=10)
    write_cifar100(root, train_per_class=10, test_per_class=2)
    return root, written


@pytest.fixture
def scenarios(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MU_BENCH_DATA", str(data_root[0]))
    return {name: tiny_variant(name, tmp_path) for name in CIFAR_SCENARIOS}


def test_cifar10_loads_through_torchvision_with_salun_split(scenarios, data_root):
    x_tr, y_tr, x_te, y_te = data_root[1]
    scenario = load(str(scenarios["cifar10-random10"]))
    data = _build(scenario)
    train, _ = salun_split(y_tr, 0.1, seed=2)
    assert data.x_train.shape == (180, 3, 32, 32) and data.x_test.shape == (100, 3, 32, 32)
    assert data.x_train.dtype == torch.float32 and data.num_classes == 10
    # Pixels as ToTensor gives them: channel-major rows of the files, scaled to [0, 1].
    expected = torch.from_numpy(x_tr[train].reshape(-1, 3, 32, 32)).float() / 255
    assert torch.equal(data.x_train, expected)
    assert torch.equal(data.x_test, torch.from_numpy(x_te.reshape(-1, 3, 32, 32)).float() / 255)
    assert data.y_train.tolist() == y_tr[train].tolist() and data.y_test.tolist() == y_te.tolist()

    split = make_split(scenario.forget, scenario.seed, data)
    assert len(split.forget_idx) == 18  # 10% of the 180 kept, as 4,500 of 45,000
    expected_forget = np.sort(np.random.RandomState(1).choice(180, 18, replace=False))
    assert split.forget_idx.tolist() == expected_forget.tolist()

    by_class = load(str(scenarios["cifar10-class"]))
    cls = _build(by_class)
    class_split = make_split(by_class.forget, by_class.seed, cls)
    assert (cls.y_train[class_split.forget_idx] == 0).all()
    assert len(class_split.forget_idx) == int((cls.y_train == 0).sum()) == 18


def test_cifar100_loads_fine_labels(scenarios):
    data = _build(load(str(scenarios["cifar100-random10"])))
    assert data.num_classes == 100
    assert data.x_train.shape == (900, 3, 32, 32) and len(data.y_test) == 200
    assert np.bincount(data.y_train.numpy()).tolist() == [9] * 100


def test_files_that_fail_torchvisions_md5_check_are_refused(scenarios, tmp_path):
    text = (
        scenarios["cifar10-random10"].read_text().replace("verify_md5 = false", "verify_md5 = true")
    )
    path = tmp_path / "verified.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match="failed torchvision's check.*verify_md5"):
        _build(load(str(path)))


def test_unverified_files_and_gpus_key_the_cache_apart(scenarios, tmp_path, monkeypatch):
    from mu_bench.submission.prepare import _key

    scenario = load(str(scenarios["cifar10-random10"]))
    first = _build(scenario).fingerprint
    other = tmp_path / "other"
    write_cifar10(other, train_per_class=20, test_per_class=10, seed=1)
    monkeypatch.setenv("MU_BENCH_DATA", str(other))
    second = _build(scenario).fingerprint
    assert first and second != first
    keys = {
        _key(scenario, "gold", 0, first),
        _key(scenario, "gold", 0, second),
        _key(scenario, "gold", 0, first, "cuda"),
    }
    assert len(keys) == 3
    # Verified (or generated) data and the CPU keep the keys they had before.
    assert _key(scenario, "gold", 0, "", "cpu") == _key(scenario, "gold", 0)


def test_resnet18_has_torchvisions_layout_and_salun_normalisation():
    from torchvision.models import resnet18

    ours = build_model(ModelSpec("resnet18", {}, (3, 32, 32), 10))
    theirs = resnet18(num_classes=10)
    keys = set(ours.state_dict())
    assert keys - set(theirs.state_dict()) == {"normalize.mean", "normalize.std"}
    assert set(theirs.state_dict()) == keys - {"normalize.mean", "normalize.std"}
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in theirs.parameters()
    ) - 64 * 3 * (7 * 7 - 3 * 3)  # the CIFAR stem's 3x3 conv1 instead of 7x7
    assert ours.conv1.kernel_size == (3, 3) and ours.conv1.stride == (1, 1)
    assert isinstance(ours.maxpool, torch.nn.Identity)
    assert ours.normalize.std.tolist() == pytest.approx([0.2470, 0.2435, 0.2616])
    x = torch.rand(2, 3, 32, 32)
    assert ours.eval()(x).shape == (2, 10)

    kit = build_model(ModelSpec("resnet18", {"stem": "imagenet"}, (3, 32, 32), 10))
    shapes = {k: v.shape for k, v in theirs.state_dict().items()}
    assert {k: v.shape for k, v in kit.state_dict().items() if k in shapes} == shapes


def test_architectures_refuse_inputs_of_the_wrong_shape():
    with pytest.raises(UsageError, match="'resnet18'.*\\(3, H, W\\).*\\(1, 8, 8\\)"):
        build_model(ModelSpec("resnet18", {}, (1, 8, 8), 10))
    with pytest.raises(UsageError, match="'cnn1d' needs 1-D inputs"):
        build_model(ModelSpec("cnn1d", {}, (1, 8, 8), 10))


def test_mixed_precision_channels_last_path_trains_on_the_cpu():
    """The CUDA fast path (autocast + channels_last) run on the CPU, where autocast to
    bfloat16 also exists: it trains, and weights stay float32 and finite."""
    from mu_bench.api import Split, TrainConfig
    from mu_bench.toolkit.accel import Accel
    from mu_bench.toolkit.training import fit

    assert Accel.auto("cpu", torch.nn.Linear(1, 1)) == Accel()  # CPU: float32 reference
    torch.manual_seed(0)
    model = build_model(ModelSpec("resnet18", {"width": 4}, (3, 32, 32), 2))
    x = torch.rand(64, 3, 32, 32)
    y = (x[:, 0].mean((1, 2)) > x[:, 2].mean((1, 2))).long()
    x[y == 1, 0] += 0.5  # an easy, learnable signal
    recipe = TrainConfig(optimizer="sgd", lr=0.05, epochs=8, batch_size=16, augment="crop-flip")

    def loss() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(model.eval()(x), y))

    before = loss()
    accel = Accel(amp_dtype=torch.bfloat16, channels_last=True)
    fit(
        model,
        Split(x, y, "crop-flip"),
        recipe,
        generator=torch.Generator().manual_seed(0),
        accel=accel,
    )
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    assert loss() < before


def test_missing_data_exits_2_naming_path_download_and_variable(tmp_path, home):
    empty = tmp_path / "no-data-here"
    cache = tmp_path / "cache"  # its own: the session's is written by parallel tests
    proc = cli(
        "submit",
        "noop",
        "-s",
        "cifar10-random10",
        "--data-root",
        str(empty),
        env={"MU_BENCH_CACHE": str(cache)},
    )
    assert proc.returncode == 2, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    assert f"{empty}" in message and "cifar-10-batches-py" in message
    assert f"mu-bench download cifar10 --data-root {empty}" in message
    assert "MU_BENCH_DATA" in message
    env = {"MU_BENCH_DATA": str(empty), "MU_BENCH_CACHE": str(cache)}
    proc = cli("prepare", "cifar100-random10", env=env)
    assert proc.returncode == 2 and "mu-bench download cifar100" in " ".join(proc.stderr.split())
    assert not empty.exists() and not home.exists() and not cache.exists()


def test_download_validates_its_argument(home):
    proc = cli("download", "cifar11")
    assert proc.returncode == 2
    assert "unknown dataset 'cifar11'" in proc.stderr and "cifar10, cifar100" in proc.stderr
    proc = cli("download", "mnist1d")
    assert proc.returncode == 0 and "needs no download" in proc.stderr
    assert not home.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", CIFAR_SCENARIOS)
def test_tiny_cifar_scenario_end_to_end(name, scenarios, data_root):
    doc = cli_json(
        "submit",
        "finetune",
        "-s",
        str(scenarios[name]),
        "-n",
        "1",
        "-p",
        "epochs=1",
        "--data-root",
        str(data_root[0]),
    )
    assert doc["status"] == "ok" and doc["seeds"][0]["status"] == "ok", doc["seeds"]
    assert doc["scenario"] == f"{name}-tiny" and doc["device"] == "cpu"
    for key in ("forget_acc", "retain_acc", "test_acc", "avg_gap", "speedup"):
        assert np.isfinite(doc["metrics"][key]), key
    assert ("test_forget_acc" in doc["metrics"]) == (name == "cifar10-class")
