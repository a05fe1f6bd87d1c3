"""The standard baselines: each forgets digit 3 and keeps the other classes, through the
real runner; each is handed only the sets it declares; and the pieces with a known
answer (per-sample gradients, SalUn's mask, the FGSM input range, the initial weights)."""

import pytest
import torch
import torch.nn.functional as F

from mu_bench import registry
from mu_bench.api import ModelSpec, Split, WeightMask, build_model, flat_grad, per_sample_grads
from mu_bench.errors import UsageError
from mu_bench.isolation.pool import threads_per_job
from mu_bench.leaderboard import reference
from mu_bench.method import read_sets
from mu_bench.methods.boundary_shrink import fgsm
from mu_bench.methods.salun import saliency_mask
from mu_bench.submission.execute import write_inputs
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan
from mu_bench.submission.prepare import init_seed, prepare
from mu_bench.toolkit.training import fit, predict_logits

from .conftest import PLUGINS

# method: (reads, scope), as ../shared/reference/methods.md section 7 has them.
BASELINES = {
    "neggrad-plus": ("both", "any"),
    "random-label": ("both", "any"),
    "l1-sparse": ("retain", "any"),
    "boundary-shrink": ("forget", "class"),
    "scrub": ("both", "any"),
    "scrub-r": ("both+validation", "any"),
    "salun": ("both", "any"),
    "fisher-forgetting": ("retain", "any"),
    "influence": ("both", "any"),
    "cf-k": ("retain", "any"),
    "eu-k": ("retain", "any"),
}
# digits-class3, 2 seeds, digits presets. The original model has forget accuracy 1.0
# and the gold (retrained) models 0.0. Each method must bring forget accuracy down to at
# most FORGET_AT_MOST and keep test accuracy on the other nine classes within TEST_DROP
# of the original's (0.963).
FORGET_AT_MOST = 0.1
TEST_DROP = 0.05


@pytest.fixture(scope="module")
def class3(shared_cache, tmp_path_factory):
    # A module fixture runs before the per-test `home` fixture: point it at the session's
    # cache itself, so the scenario is prepared once for the whole module.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MU_BENCH_HOME", str(tmp_path_factory.mktemp("baselines")))
        env.setenv("MU_BENCH_CACHE", str(shared_cache))
        return {m: run(plan(m, "digits-class3", seeds=2), "cpu").report for m in BASELINES}


# Fair-tuned presets (`mu-bench tune`: on digit 4, never on digit 3) that miss the marks
# above on digit 3, as measured (2 seeds). These methods are cliffs in their rate or loss
# weight, and the best setting for one class does not carry over to the next. Strict:
# the mark fails once a preset passes. (The hand-picked presets they replaced, picked on
# digit 3 before the validation carve, missed too: forget acc 0.25 and 0.19.)
MISSES_ON_CLASS_3 = {
    "neggrad-plus": "forgets digit 3 (0.0) but costs 6.8 points of test accuracy",
    "boundary-shrink": "keeps utility but leaves forget acc 0.14 on digit 3",
    "scrub": "keeps utility but leaves forget acc 0.93 on digit 3 (lr 8.0e-4; 1e-3 forgot it)",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "method",
    [
        pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=f"fair-tuned preset: {why}"))
        if (why := MISSES_ON_CLASS_3.get(m))
        else m
        for m in BASELINES
    ],
)
def test_forgets_digit_3_and_keeps_the_other_classes(class3, method):
    report = class3[method]
    assert report.status == "ok", [s.error for s in report.seeds]
    m, original = report.metrics, report.reference["original"]
    assert original["forget_acc"] >= 0.99 and report.reference["gold"]["forget_acc"] <= 0.01
    assert m["forget_acc"] <= FORGET_AT_MOST, m
    assert m["test_acc"] >= original["test_acc"] - TEST_DROP, m


@pytest.mark.parametrize("method", BASELINES)
def test_declares_its_data_and_scope_and_gets_only_that(method, tmp_path):
    cls = registry.get(method).load()
    assert (cls.reads, cls.scope) == BASELINES[method]
    sub = plan(method, "digits-class3", seeds=1)
    art = prepare(sub.scenario, "cpu")
    inputs = write_inputs(sub, art, tmp_path)
    given = sorted(k for k in ("forget", "retain", "validation") if k in inputs)
    assert given == sorted(read_sets(cls.reads))
    assert inputs["model"] == art.original.weights and set(inputs) == {"model", *given}
    assert {p.name for p in tmp_path.iterdir()} == {f"{k}.pt" for k in given}


@pytest.mark.parametrize("probe", ["probe-forget-only", "probe-retain-only"])
def test_a_method_that_declares_one_set_never_receives_the_other(probe, monkeypatch):
    """Through the real runner: the probe checks from inside its worker that the other
    set is not in its request.json, not beside its inputs, and raises DataAccessError."""
    monkeypatch.syspath_prepend(str(PLUGINS / "probes"))
    report = run(plan(probe, "digits-class3", seeds=1), "cpu").report
    assert report.status == "ok", report.seeds[0].error


def test_initial_model_is_the_init_the_original_was_trained_from(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS / "probes"))
    sub = plan("probe-initial-model", "digits-class3", seeds=1)
    evaluation = run(sub, "cpu")
    report, outputs = evaluation.report, evaluation.outputs
    assert report.status == "ok", report.seeds[0].error
    art = prepare(sub.scenario, "cpu")
    seed = init_seed(sub.scenario, "original", 0)
    torch.manual_seed(seed)
    init = build_model(art.spec)
    torch.testing.assert_close(outputs[0].test, predict_logits(init, art.data.x_test))
    # Training that init with the scenario's recipe reproduces the original model, on
    # as many torch threads as prepare's worker had (the reduction order depends on it).
    full = Split(art.data.x_train, art.data.y_train, sub.scenario.train.augment)
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_per_job("cpu"))
    try:
        fit(init, full, sub.scenario.train, generator=torch.Generator().manual_seed(seed))
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(predict_logits(init, art.data.x_test), art.original.outputs.test)


@pytest.mark.slow
def test_class_only_method_on_random_forgetting_is_marked_out_of_scope():
    report = run(plan("boundary-shrink", "digits-random10", seeds=1), "cpu").report
    assert report.status == "ok" and not report.in_scope
    assert any("out of scope" in note for note in report.notes)


def test_reference_leaderboard_covers_every_builtin_and_splices_the_readme():
    names = reference.builtin_methods()
    assert set(BASELINES) | {"noop", "retrain", "finetune", "gradient-ascent"} <= set(names)
    assert not [n for n in names if n.startswith(("probe-", "fault-"))]
    text = f"intro\n{reference.START}\nold table\n{reference.END}\nrest\n"
    new = f"intro\n{reference.START}\nnew\n{reference.END}\nrest\n"
    assert reference.splice(text, "new\n") == new
    with pytest.raises(UsageError, match="markers"):
        reference.splice("no markers here", "new\n")


def _tiny():
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", {"hidden": [5]}, (1, 2, 2), 3)).eval()
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    return model, x, y


def test_per_sample_gradients_match_a_batch_of_one_loop():
    model, x, y = _tiny()
    rows = []
    for i in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        rows.append(flat_grad(model.parameters()))
    torch.testing.assert_close(per_sample_grads(model, x, y), torch.stack(rows))


def test_saliency_mask_keeps_the_top_fraction_of_forget_gradients():
    model, x, y = _tiny()

    class Task:  # what saliency_mask reads of a task
        forget, generator = Split(x, y), None

    masks = saliency_mask(model, Task(), 0.3, 256)
    model.zero_grad()
    (-F.cross_entropy(model(x), y)).backward()
    score = torch.cat([p.grad.abs().flatten() for p in model.parameters()])
    chosen = torch.cat([masks[n].flatten() for n, _ in model.named_parameters()]).bool()
    assert chosen.sum() == int(0.3 * len(score))
    assert score[chosen].min() >= score[~chosen].max()


@pytest.mark.parametrize("mode", ["gradient", "reset"])
def test_salun_mask_modes(mode):
    """`gradient` masks the gradient only (weight decay still moves masked weights);
    `reset` keeps masked weights exactly at their starting value (commit a6e89fd)."""
    model, x, y = _tiny()
    start = [p.detach().clone() for p in model.parameters()]
    masks = {n: (torch.rand_like(p) < 0.5).float() for n, p in model.named_parameters()}
    mask = WeightMask(model, masks, mode)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        mask.mask_grads()
        opt.step()
        mask.after_step(opt)
    for (name, p), p0 in zip(model.named_parameters(), start, strict=True):
        frozen = masks[name] == 0
        moved = (p.detach() - p0)[frozen].abs().max()
        assert (moved == 0) if mode == "reset" else (moved > 0)
        assert (p.detach() - p0)[~frozen].abs().max() > 0


def test_fgsm_clamps_images_to_pixels_and_leaves_signals_unbounded():
    model = build_model(ModelSpec("mlp", {"hidden": [4]}, (1, 2, 2), 3))
    x, y = torch.tensor([[[[0.0, 0.5], [0.97, 1.0]]]]), torch.tensor([1])
    pixels = fgsm(model, x, y, 0.1, pixels=True)
    assert pixels.min() >= 0 and pixels.max() <= 1
    torch.testing.assert_close(pixels * 255, (pixels * 255).round())
    signal = fgsm(model, x, y, 0.1, pixels=False)
    torch.testing.assert_close((signal - x).abs(), torch.full_like(x, 0.1))
