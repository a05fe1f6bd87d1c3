"""Deletion streams: the requests, the per-prefix gold models (retrained without
everything deleted so far, cached, reused across methods), the composition (a stream of
one request is the one-shot submission), SISA's exactness on a stream (through the real
runner and, in process, against the rows each `fit` call actually got), the report and
the store, and bad input."""

import copy
from pathlib import Path

import pytest
import torch

from mu_bench.api import ModelSpec, Split, TrainConfig, TrainTask, UnlearnTask
from mu_bench.budget import Budget
from mu_bench.cache import Cache
from mu_bench.errors import UsageError
from mu_bench.isolation.pool import LocalPool
from mu_bench.methods import sisa as sisa_module
from mu_bench.methods.sisa import SISA, _checkpoint, load_ledger
from mu_bench.models.registry import build_model
from mu_bench.scenario import parse
from mu_bench.submission.pipeline import run
from mu_bench.submission.plan import plan
from mu_bench.submission.prepare import init_seed, prepare
from mu_bench.submission.stream import prepare_stream, request_indices, run_stream
from mu_bench.toolkit.training import fit, predict_logits

from .conftest import cli, cli_json

# A small stream: 30 random digits in 3 requests of 10, a small MLP, 2 gold models per
# prefix and 2 seeds (forget quality needs 2 a side).
TINY = """
name = "tiny-stream"
summary = "test stream"
seed = 0

[data]
dataset = "digits"

[forget]
rule = "random"
count = 30

[model]
arch = "mlp"
hidden = [64]

[train]
optimizer = "adam"
lr = 1e-3
epochs = 10
batch_size = 64

[gold]
seeds = 2

[budget]
seconds = 30

[submit]
seeds = 2
"""


def tiny(tmp_path: Path, requests: int | None = 3, name: str = "tiny-stream.toml") -> Path:
    path = tmp_path / name
    path.write_text(TINY + (f"\n[stream]\nrequests = {requests}\n" if requests else ""))
    return path


def test_requests_partition_the_forget_set_in_a_seeded_order(tmp_path):
    scenario = parse(tiny(tmp_path, 4).read_text(), "tiny")
    art = prepare(scenario, "cpu")
    parts = request_indices(scenario, art.split)
    assert [len(p) for p in parts] == [8, 8, 7, 7]  # 30 = 4 x 7 + 2: the first two longer
    assert torch.equal(torch.sort(torch.cat(parts)).values, art.split.forget_idx)
    assert all(torch.equal(p, torch.sort(p).values) for p in parts)
    again = request_indices(scenario, art.split)
    assert all(torch.equal(a, b) for a, b in zip(parts, again, strict=True))
    # Not the forget set cut in index order: the order is drawn.
    assert not torch.equal(parts[0], art.split.forget_idx[:8])


def test_stream_sections_are_validated(tmp_path):
    with pytest.raises(UsageError, match="requests"):
        parse(TINY + "\n[stream]\nrequests = 0\n", "x")
    with pytest.raises(UsageError, match="exceeds the forget set's 30 examples"):
        parse(TINY + "\n[stream]\nrequests = 31\n", "x")
    with pytest.raises(UsageError, match="unknown key 'stream.size'"):
        parse(TINY + "\n[stream]\nrequests = 3\nsize = 2\n", "x")


def test_too_many_requests_for_a_fraction_stops_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setenv("MU_BENCH_CACHE", str(tmp_path / "cache"))
    text = TINY.replace("count = 30", "fraction = 0.01") + "\n[stream]\nrequests = 20\n"
    path = tmp_path / "many.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match="requests = 20 exceeds the forget set's 14"):
        prepare_stream(parse(text, "x"), "cpu")
    assert not (tmp_path / "cache" / "models").exists()
    proc = cli("submit", "noop", "-s", str(path))
    assert proc.returncode == 2 and "give at most 14 requests" in proc.stderr
    assert not (tmp_path / "cache" / "models").exists()


def test_prefix_gold_models_retrain_without_all_deleted_and_are_reused(tmp_path, monkeypatch):
    """Each prefix's gold models are retrained from scratch without every row deleted so
    far, cached once, and a second method's stream trains nothing."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MU_BENCH_CACHE", str(cache))
    path = str(tiny(tmp_path))
    first = run_stream(plan("finetune", path), "cpu").evaluation.report
    assert first.status == "ok", [s.error for s in first.seeds]
    entries = sorted(p.name for p in (cache / "models").iterdir() if not p.name.endswith("lock"))
    assert len(entries) == 1 + 2 * 3  # the original, 2 gold models per prefix
    second = run_stream(plan("noop", path), "cpu").evaluation.report
    assert second.status == "ok"
    again = sorted(p.name for p in (cache / "models").iterdir() if not p.name.endswith("lock"))
    assert again == entries  # the second method trained no model

    heard = []
    stream = prepare_stream(parse(Path(path).read_text(), path), "cpu", on_model=heard.append)
    assert heard and all(m.cache_hit for m in heard)
    keys = [[m.key for m in p.art.gold] for p in stream.prefixes]
    assert len({k for ks in keys for k in ks}) == 6  # each prefix its own gold models
    assert keys[-1] == [m.key for m in stream.base.gold]  # the last: the scenario's own
    # Prefix 0's gold model 0, retrained by hand on the rows left after request 0.
    p0, art = stream.prefixes[0], stream.base
    assert set(p0.deleted.tolist()) == set(p0.request.tolist())
    left = sorted(set(range(len(art.data.y_train))) - set(p0.deleted.tolist()))
    assert p0.art.split.retain_idx.tolist() == left
    seed = init_seed(art.scenario, "gold", 0)
    torch.manual_seed(seed)
    model = build_model(art.spec)
    retain = Split(art.data.x_train[left], art.data.y_train[left])
    fit(model, retain, art.scenario.train, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(predict_logits(model, art.data.x_test), p0.art.gold[0].outputs.test)
    # Scored after request 0 on everything deleted so far (its forget set is prefix 0's).
    assert first.requests[0]["deleted"] == 10 and first.requests[-1]["deleted"] == 30


def _weights_equal(a: Path, b: Path) -> bool:
    wa, wb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_a_stream_through_a_pool_gives_what_one_job_at_a_time_gives(tmp_path, monkeypatch):
    """Each prefix's gold models trained as jobs through a pool of 2 are the models
    trained in process; SISA (its state travelling from request to request) gives the
    same results on the stream through the pool as one job at a time."""
    path = tiny(tmp_path)
    scenario = parse(path.read_text(), str(path))
    here = prepare_stream(scenario, "cpu", cache=Cache(tmp_path / "here"))
    pool = prepare_stream(scenario, "cpu", cache=Cache(tmp_path / "pool"), executor=LocalPool(2))
    assert not any(m.cache_hit for p in pool.prefixes for m in p.art.gold)
    for a, b in zip(here.prefixes, pool.prefixes, strict=True):
        assert [m.key for m in a.art.gold] == [m.key for m in b.art.gold]
        for x, y in zip(a.art.gold, b.art.gold, strict=True):
            assert _weights_equal(x.weights, y.weights), (a.index, x.index)
            assert torch.equal(x.outputs.test, y.outputs.test)

    def results(report) -> list[dict]:
        return [
            {k: v for k, v in r["metrics"].items() if "seconds" not in k and "speedup" not in k}
            for r in report.requests
        ]

    sub = plan("sisa", str(path), params={"shards": "4", "slices": "3"})
    monkeypatch.setenv("MU_BENCH_CACHE", str(tmp_path / "here"))
    serial = run_stream(sub, "cpu", stream=here).evaluation.report
    monkeypatch.setenv("MU_BENCH_CACHE", str(tmp_path / "pool"))  # its stage trains as jobs
    heard = []
    pooled = run_stream(
        sub, "cpu", stream=pool, executor=LocalPool(2), on_outcome=heard.append
    ).evaluation.report
    assert serial.status == pooled.status == "ok", [s.error for s in pooled.seeds]
    assert len(heard) == 3 * 2  # every request's every seed
    assert results(pooled) == results(serial)


def test_a_stream_of_one_request_is_the_one_shot_submission(tmp_path):
    one = run(plan("finetune", str(tiny(tmp_path, 1, "one.toml"))), "cpu")
    shot = run(plan("finetune", str(tiny(tmp_path, None, "shot.toml"))), "cpu")
    for a, b in zip(one.outputs.values(), shot.outputs.values(), strict=True):
        torch.testing.assert_close(a.test, b.test)
    m1, m0 = one.report.metrics, shot.report.metrics
    for name in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy", "forget_quality"):
        assert m1[name] == pytest.approx(m0[name]), name
    assert len(one.report.requests) == 1 and not shot.report.requests
    assert m1["stream_unlearn_seconds"] == pytest.approx(m1["unlearn_seconds"])


def _shards(state: Path) -> list[torch.Tensor]:
    return torch.load(state / sisa_module.SHARDS_FILE, weights_only=True)["shards"]


def _member(weights: dict, s: int) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights.items() if k.startswith(f"members.{s}.")}


@pytest.mark.slow
def test_sisa_is_exact_on_the_stream_through_the_real_runner(tmp_path):
    """After each request, no member of any seed's ensemble, and no checkpoint it could
    resume from, was trained on a row deleted so far; untouched members stay as they
    were and hit ones are retrained."""
    path = tiny(tmp_path)
    stream = prepare_stream(parse(path.read_text(), str(path)), "cpu")
    sub = plan("sisa", str(path), params={"shards": "4", "slices": "3"})
    work = tmp_path / "work"
    report = run_stream(sub, "cpu", stream=stream, keep_work=True, work=work).evaluation.report
    assert report.status == "ok", [s.error for s in report.seeds]
    deleted: set[int] = set()
    before: dict[tuple[int, int], dict] = {}
    for prefix in stream.prefixes:
        r, request = prefix.index, set(prefix.request.tolist())
        deleted |= request
        assert deleted == set(prefix.deleted.tolist())
        for seed in range(2):
            out = work / f"request-{r}" / f"seed-{seed}" / "output"
            ledger, shards = load_ledger(out / "state"), _shards(out / "state")
            weights = torch.load(out / "weights.pt", weights_only=True)
            for s, shard in enumerate(shards):
                assert not ledger["dropped"][s] and ledger["complete"][s]
                trained = set(ledger["trained_on"][s].tolist())
                # Every remaining row of the shard, and no deleted one.
                assert trained == set(shard.tolist()) - deleted, (r, seed, s)
                for j in range(ledger["valid"][s]):
                    ckpt = torch.load(out / "state" / _checkpoint(s, j), weights_only=True)
                    assert not set(ckpt["trained_on"].tolist()) & deleted, (r, seed, s, j)
                member, hit = _member(weights, s), bool(set(shard.tolist()) & request)
                if (seed, s) in before:
                    same = all(torch.equal(member[k], before[seed, s][k]) for k in member)
                    assert same != hit, (r, seed, s, hit)
                before[seed, s] = member
        assert report.requests[r]["metrics"]["method.shards_retrained"] >= 1
    assert len(deleted) == 30


def test_sisa_fits_only_rows_not_yet_deleted(tmp_path, monkeypatch):
    """In process, against what each `fit` call actually got (the rows carry their
    training position in their first pixel): over a stream of requests, a member is
    never fitted on a row deleted by this or an earlier request, its ledger covers every
    row it was fitted on, and it ends up trained on every row its shard has left."""
    n, shards, slices = 96, 3, 3
    x = torch.rand(n, 1, 2, 2)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32)  # the row's training position
    y = torch.arange(n) % 4
    spec = ModelSpec("mlp", {"hidden": [8]}, (1, 2, 2), 4)
    recipe = TrainConfig(lr=1e-3, epochs=3, batch_size=16)
    fitted: list[set[int]] = []

    def recording_fit(model, data, *args, **kwargs):
        fitted.append({int(v) for v in data.x[:, 0, 0, 0].round().tolist()})
        return fit(model, data, *args, **kwargs)

    monkeypatch.setattr(sisa_module, "fit", recording_fit)
    common = dict(
        num_classes=4,
        seed=0,
        rng_seed=7,
        device=torch.device("cpu"),
        recipe=recipe,
        model_spec=spec,
        generator=torch.Generator().manual_seed(7),
    )
    method = SISA(shards=shards, slices=slices)
    state = tmp_path / "train-state"
    state.mkdir()
    model = method.train(
        TrainTask(train_set=Split(x, y), state_dir=state, budget=Budget(600), **common)
    )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    requests = [torch.sort(order[i : i + 5]).values for i in (0, 5, 10, 15)]
    deleted: set[int] = set()
    for r, request in enumerate(requests):
        deleted |= set(request.tolist())
        retain = torch.tensor(sorted(set(range(n)) - deleted))
        fitted.clear()
        out = tmp_path / f"state-{r}"
        out.mkdir()
        task = UnlearnTask(
            model=copy.deepcopy(model),
            budget=Budget(600),
            forget_set=Split(x[request], y[request]),
            retain_set=Split(x[retain], y[retain]),
            trained_dir=state,
            forget_index=request,
            retain_index=retain,
            state_dir=out,
            **common,
        )
        model = method.unlearn(task)
        assert fitted, "a request that hits a shard retrains it"
        ledger, parts = load_ledger(out), _shards(out)
        for rows in fitted:
            assert not rows & deleted, (r, sorted(rows & deleted))
            owner = [s for s, part in enumerate(parts) if rows <= set(part.tolist())]
            assert len(owner) == 1  # a fit call trains one member on its own shard's rows
            assert rows <= set(ledger["trained_on"][owner[0]].tolist())
        for s, part in enumerate(parts):
            assert set(ledger["trained_on"][s].tolist()) == set(part.tolist()) - deleted
        state = out  # the next request starts from this one's state


@pytest.mark.slow
def test_submit_on_a_stream_reports_and_stores_every_request(tmp_path):
    from mu_bench.leaderboard import store

    doc = cli_json("submit", "finetune", "-s", str(tiny(tmp_path)), "--no-figures")
    assert doc["status"] == "ok" and len(doc["requests"]) == 3
    assert [r["deleted"] for r in doc["requests"]] == [10, 20, 30]
    per_request = [r["metrics"] for r in doc["requests"]]
    spent = [m["stream_unlearn_seconds"] for m in per_request]
    assert spent == sorted(spent) and doc["metrics"]["stream_unlearn_seconds"] == spent[-1]
    assert doc["metrics"]["stream_requests"] == 3
    assert doc["metrics"]["forget_acc"] == per_request[-1]["forget_acc"]
    c = store.client(store.resolve_uri(None))
    from mu_bench.evaluation.catalogue import stored

    history = c.get_metric_history(doc["run_id"], stored("request.forget_acc"))
    assert stored("request.forget_acc") == "8_stream/request.forget_acc"
    assert [(h.step, h.value) for h in history] == [
        (i, m["forget_acc"]) for i, m in enumerate(per_request)
    ]
    board = cli_json("leaderboard", "tiny-stream")
    row = board["tiny-stream"][0] if isinstance(board, dict) else board[0]
    assert row["stream_unlearn_seconds"] == pytest.approx(spent[-1])


def test_prepare_trains_each_prefix_gold_models_once(tmp_path):
    path = str(tiny(tmp_path))
    cli_json("prepare", path)
    doc = cli_json("prepare", path)
    assert [p["deleted"] for p in doc["stream"]] == [10, 20, 30]
    assert all(p["gold_models"] == 2 and p["cache_hits"] == 2 for p in doc["stream"])
