"""The founding methods, SISA, PBU and Scissorhands, through the real runner: each
forgets digit 3 and keeps utility; SISA on random forgetting retrains only the shards
that held forget examples and is exact; PBU never gets the retain set; every method
stops on its own under a tiny budget; and the pieces with a known answer (the true
Fisher, the GEM projection, the reset fraction, SISA's resume slice) are checked."""

import json
import math

import pytest
import torch
from torch import nn

from mu_bench.api import Budget, ModelSpec, Split, TrainTask, UnlearnTask, build_model
from mu_bench.leaderboard import ranking, render, store
from mu_bench.methods import scissorhands as sh
from mu_bench.methods import sisa
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan
from mu_bench.submission.prepare import prepare
from mu_bench.toolkit.fisher import diagonal_fisher
from mu_bench.toolkit.layers import last_stages, stage_parameters

METHODS = ("sisa", "pbu", "scissorhands")


@pytest.fixture(scope="module")
def class3():
    """Each method on digits-class3 with its digits preset, 2 seeds, through the runner."""
    return {m: run(plan(m, "digits-class3", seeds=2), "cpu").report for m in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_each_method_forgets_digit_3_and_keeps_retain_accuracy(class3, method):
    report = class3[method]
    m, original = report.metrics, report.reference["original"]
    print(
        f"{method}: forget {m['forget_acc']:.3f}, retain {m['retain_acc']:.3f} "
        f"(original {original['retain_acc']:.3f}), test {m['test_acc']:.3f}"
    )
    assert report.status == "ok" and report.in_scope
    assert original["forget_acc"] >= 0.9
    assert m["forget_acc"] <= 0.2
    assert m["retain_acc"] >= original["retain_acc"] - 0.05


def test_sisa_on_random_forgetting_retrains_only_hit_shards_and_is_exact():
    # 130 random deletions hit every one of 5 shards (a shard escapes with probability
    # (1 - 1/S)^130); with 50 shards a few escape.
    sub = plan("sisa", "digits-random10", seeds=1, params={"shards": "50"})
    report = run(sub, "cpu").report
    assert report.status == "ok"
    m, gold = report.metrics, report.reference["gold"]
    print({k: round(v, 4) for k, v in m.items()}, "gold forget", round(gold["forget_acc"], 4))
    assert 40 <= m["method.shards_retrained"] < 50
    assert m["method.shards_dropped"] == 0
    # Exact: forget examples are as unseen as test examples, so SISA's forget accuracy
    # sits where gold's does, less what the shards cost in accuracy, within the
    # binomial noise of 130 examples.
    n = len(prepare(sub.scenario, "cpu").split.forget_idx)
    noise = 2 * math.sqrt(gold["forget_acc"] * (1 - gold["forget_acc"]) / n + 0.25 / n**2)
    assert abs(m["forget_acc"] - gold["forget_acc"]) <= max(m["trained_acc_drop"], 0) + noise
    assert m["train_seconds"] > 0 and m["trained_acc_drop"] > 0


def test_pbu_never_gets_the_retain_set_and_is_out_of_scope_on_random_forgetting(
    tmp_path, monkeypatch
):
    work = tmp_path / "work"
    monkeypatch.setenv("MU_BENCH_WORK", str(work))
    report = run(plan("pbu", "digits-random10", seeds=1), "cpu", keep_work=True).report
    assert report.status == "ok" and not report.in_scope
    request = next(work.rglob("request.json"))
    assert "retain" not in json.loads(request.read_text())["inputs"]
    inputs = request.parent / "inputs"
    assert {p.name for p in inputs.iterdir()} == {"model.pt", "forget.pt"}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store.record(report, uri)
    board = render.board_rows(ranking.table(ranking.load(uri, "digits-random10")))
    assert board.rows[0]["method"] == "pbu" + render.OUT_OF_SCOPE
    assert any("out of scope" in note for note in board.notes)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("sisa", {}),  # retraining 5 shards takes about 2 s
        ("pbu", {"epochs": "5000", "stop_forget_acc": "0"}),
        ("scissorhands", {"epochs": "5000"}),
    ],
)
def test_a_tiny_budget_gives_an_early_valid_result(method, params):
    """With a 0.2 s budget and 1 s of grace each method returns by itself (a killed worker
    has no `unlearn_seconds`): `ok`, or `timeout` for overrunning by a step."""
    sub = plan(method, "digits-class3", seeds=1, budget="0.2", params=params)
    report = run(sub, "cpu", grace=1.0).report
    seed = report.seeds[0]
    assert seed.unlearn_seconds is not None, seed.error
    assert seed.status in ("ok", "timeout"), seed.error
    if seed.status == "ok":
        assert 0 <= seed.metrics["forget_acc"] <= 1


def test_true_fisher_matches_a_direct_loop_and_is_not_the_empirical_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    x, y = torch.randn(11, 5), torch.randint(0, 3, (11,))
    fast = diagonal_fisher(model, x, memory_bytes=4 * 3 * 66 * 4)  # 4 examples a chunk
    params = list(model.parameters())
    true = [torch.zeros_like(p) for p in params]
    empirical = [torch.zeros_like(p) for p in params]
    for xi, yi in zip(x, y, strict=True):
        log_p = model(xi[None]).log_softmax(-1)[0]
        for c in range(3):
            grads = torch.autograd.grad(log_p[c], params, retain_graph=True)
            for t, e, g in zip(true, empirical, grads, strict=True):
                t += log_p[c].exp().detach() * g.square() / len(x)
                if c == yi:
                    e += g.square() / len(x)
    for (name, _), t, e in zip(model.named_parameters(), true, empirical, strict=True):
        assert torch.allclose(fast[name], t, rtol=1e-5, atol=1e-8), name
        assert not torch.allclose(fast[name], e, rtol=1e-2)
    first_chunk = diagonal_fisher(model, x[:4])
    stopped = diagonal_fisher(model, x, memory_bytes=4 * 3 * 66 * 4, should_stop=lambda: True)
    for k, v in stopped.items():  # stopped after its first chunk: the mean over 4 examples
        torch.testing.assert_close(v, first_chunk[k])


def test_projection_does_not_lower_the_forget_loss_to_first_order():
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        g, g_o = torch.randn(50, generator=gen), torch.randn(50, generator=gen)
        dot = torch.dot(g, g_o)
        exact = sh.project_one_memory(g, g_o, eps=0.0)
        assert torch.dot(exact, g_o) >= -1e-5 * g.norm() * g_o.norm()
        # the default ridge eps = 1e-3 of project2cone2 leaves at most that share of g.g_o
        ridge = sh.project_one_memory(g, g_o)
        bound = -abs(dot) * sh.EPS / (torch.dot(g_o, g_o) + sh.EPS)
        assert torch.dot(ridge, g_o) >= bound - 1e-5
        if dot >= 0:
            assert torch.equal(ridge, g)
        else:  # the QP's solution: v = argmin 0.5 P v^2 + (g.g_o) v over v >= margin
            v = torch.dot(ridge - g, g_o) / torch.dot(g_o, g_o)
            grid = torch.linspace(sh.MARGIN, sh.MARGIN + 20, 20001)
            p = torch.dot(g_o, g_o) + sh.EPS
            best = grid[torch.argmin(0.5 * p * grid**2 + dot * grid)]
            assert v == pytest.approx(best.item(), abs=2e-3)


def _resnet():
    torch.manual_seed(0)
    return build_model(ModelSpec("resnet18", {"width": 4}, (3, 8, 8), 10))


@pytest.mark.parametrize("model_fn", [_resnet, None], ids=["resnet18", "digits-mlp"])
def test_scissorhands_eligible_rule_resets_exactly_the_requested_fraction(model_fn):
    if model_fn is None:
        torch.manual_seed(0)
        model = build_model(ModelSpec("mlp", {"hidden": [256, 256]}, (1, 8, 8), 10))
        x = torch.rand(32, 1, 8, 8)
    else:
        model, x = model_fn(), torch.rand(32, 3, 8, 8)
    y = torch.randint(0, 10, (32,))
    stages = last_stages(model, 3)
    eligible = list(stage_parameters(model, stages, skip_norm=True))
    if model_fn is _resnet:
        assert stages == ["layer3", "layer4", "fc"]
        assert not any(".bn" in k or "downsample.1" in k for k in eligible)
        assert "layer4.0.downsample.0.weight" in eligible and "fc.bias" in eligible
    saliency = sh.snip_saliency(model, [(x, y)])
    masks = sh.reset_masks(saliency, eligible, 0.97, rank_among="eligible")
    n_eligible = sum(saliency[k].numel() for k in eligible)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    assert sh.reinitialise(model, masks) == n_eligible - int(0.97 * n_eligible)
    after = dict(model.named_parameters())
    changed = sum(int((after[k] != before[k]).sum()) for k in before)
    assert changed == n_eligible - int(0.97 * n_eligible)
    for k in before:
        if k not in eligible:
            assert torch.equal(after[k], before[k]), k
        else:  # the reset entries are the most salient of the eligible ones
            if masks[k].any() and (~masks[k]).any():
                assert saliency[k][masks[k]].min() >= saliency[k][~masks[k]].max() - 1e-12
        if k.endswith("bias") and k in masks:
            assert (after[k][masks[k]] == 0).all()


def _sisa_setup(shards: int, slices: int):
    """SISA, 60 tiny examples and the task fields they share, for in-process runs."""
    from mu_bench.api import TrainConfig

    torch.manual_seed(0)
    n = 60
    x, y = torch.rand(n, 1, 2, 2), torch.randint(0, 3, (n,))
    spec = ModelSpec("mlp", {"hidden": [4]}, (1, 2, 2), 3)
    recipe = TrainConfig(optimizer="adam", lr=1e-2, epochs=4, batch_size=8)
    common = dict(
        num_classes=3,
        seed=0,
        rng_seed=7,
        device=torch.device("cpu"),
        recipe=recipe,
        model_spec=spec,
        generator=torch.Generator().manual_seed(7),
    )
    return sisa.SISA(shards=shards, slices=slices), x, y, common


def test_sisa_retrains_from_the_last_clean_slice_and_never_sees_a_forgotten_example(
    tmp_path, monkeypatch
):
    method, x, y, common = _sisa_setup(3, 3)
    trained = method.train(
        TrainTask(train_set=Split(x, y), budget=Budget(60), state_dir=tmp_path, **common)
    )
    shards = torch.load(tmp_path / sisa.SHARDS_FILE, weights_only=True)["shards"]
    assert sorted(torch.cat(shards).tolist()) == list(range(60))
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == sorted(
        f"shard-{s}-slice-{r}.pt" for s in range(3) for r in range(2)
    )
    # Slices of a 20-example shard: [0, 6), [0, 12), [0, 20). Shard 0 loses its 9th
    # example (slice 1: resume from slice 0's checkpoint), shard 1 its 1st (slice 0:
    # from scratch), shard 2 nothing.
    forget = sorted([int(shards[0][8]), int(shards[1][0])])
    retain = sorted(set(range(60)) - set(forget))
    seen: list[torch.Tensor] = []
    loaded: list[str] = []
    real_fit, real_load = sisa.fit, torch.load

    def spy_fit(model, data, *args, **kwargs):
        seen.append(data.x)
        return real_fit(model, data, *args, **kwargs)

    def spy_load(path, *args, **kwargs):
        loaded.append(getattr(path, "name", str(path)))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(sisa, "fit", spy_fit)
    monkeypatch.setattr(torch, "load", spy_load)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    task = UnlearnTask(
        model=trained,
        budget=Budget(60),
        retain_set=Split(x[retain], y[retain]),
        trained_dir=tmp_path,
        forget_index=torch.tensor(forget),
        retain_index=torch.tensor(retain),
        **common,
    )
    out = method.unlearn(task)
    assert task.reported == {"shards_retrained": 2.0, "shards_dropped": 0.0, "shards_active": 3.0}
    assert "shard-0-slice-0.pt" in loaded and not any("shard-1-" in p for p in loaded)
    assert len(seen) == 2 + 3  # shard 0: slices 1 and 2; shard 1: all three
    for data in seen:
        for f in forget:
            assert not (data == x[f]).flatten(1).all(1).any(), "a forgotten example was used"
    state = out.state_dict()
    for k in before:
        if k.startswith("members.2."):
            assert torch.equal(state[k], before[k]), k
    assert not torch.equal(state["members.0.1.weight"], before["members.0.1.weight"])


def test_sisa_drops_shards_it_cannot_retrain_in_time(tmp_path):
    method, x, y, common = _sisa_setup(4, 1)
    trained = method.train(
        TrainTask(train_set=Split(x, y), budget=Budget(60), state_dir=tmp_path, **common)
    )
    retain = list(range(1, 60))
    task = UnlearnTask(
        model=trained,
        budget=Budget(0.0),  # already expired
        retain_set=Split(x[retain], y[retain]),
        trained_dir=tmp_path,
        forget_index=torch.tensor([0]),
        retain_index=torch.tensor(retain),
        **common,
    )
    out = method.unlearn(task)
    assert task.reported == {"shards_retrained": 0.0, "shards_dropped": 1.0, "shards_active": 3.0}
    assert out.member_weights.tolist().count(0.0) == 1
