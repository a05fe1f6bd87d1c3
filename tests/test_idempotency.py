"""A submission's idempotency key: what changes it, and finding it on a SQLite board."""

from __future__ import annotations

import pytest

from mu_bench.leaderboard import store
from mu_bench.submission.report import Report, SeedReport

REQUEST = dict(
    scenario="digits-random10",
    scenario_hash="ab" * 32,
    method="finetune",
    distribution="mu-bench",
    version="0.1.0",
    params={"lr": 0.01, "epochs": 3},
    seeds=2,
    budget=10.0,
    device="cpu",
    harness_version="0.1.0",
)


def key(**changes) -> str:
    return store.submission_key(**{**REQUEST, **changes})


def test_key_is_stable_and_ignores_what_does_not_change_the_request():
    assert key() == key()
    assert len(key()) == 64
    assert key(params={"epochs": 3, "lr": 0.01}) == key()  # order given
    assert key(seeds=[1, 0]) == key()  # 2 seeds are seeds 0 and 1
    assert key(budget="10") == key() == key(budget=10)
    assert key(budget=" 20% ") == key(budget="20.0%")
    assert key(device="cuda:0") == key(device="cuda:1") == key(device="cuda")


@pytest.mark.parametrize(
    "change",
    [
        {"scenario": "digits-class3"},
        {"scenario_hash": "cd" * 32},
        {"method": "gradient-ascent"},
        {"distribution": "someone-else"},
        {"version": "0.2.0"},
        {"params": {"lr": 0.02, "epochs": 3}},
        {"params": {"lr": 0.01, "epochs": 3, "momentum": 0.9}},
        {"seeds": 3},
        {"seeds": [0, 2]},
        {"budget": 11.0},
        {"budget": "10%"},
        {"device": "cuda"},
        {"harness_version": "0.2.0"},
    ],
)
def test_every_part_of_the_request_changes_the_key(change):
    assert key(**change) != key()


def test_key_of_a_planned_submission():
    from mu_bench.submission.plan import plan

    sub = plan("finetune", "digits-random10", seeds=2)
    k = store.key_of(sub, "cpu")
    assert k == store.key_of(plan("finetune", "digits-random10", seeds=2), "cpu")
    # the scenario's default budget and the same number given explicitly are one request
    explicit = plan("finetune", "digits-random10", seeds=2, budget=str(sub.scenario.budget.seconds))
    assert store.key_of(explicit, "cpu") == k
    assert store.key_of(plan("finetune", "digits-random10", seeds=3), "cpu") != k
    assert store.key_of(plan("finetune", "digits-random10", seeds=2, budget="50%"), "cpu") != k
    other = plan("finetune", "digits-random10", seeds=2, params={"epochs": "7"})
    assert store.key_of(other, "cpu") != k


def report(method: str = "noop", scenario: str = "digits-random10") -> Report:
    """A hand-made report: recording needs no model."""
    seeds = tuple(SeedReport(s, "ok", 0.1, 0.2, metrics={"forget_acc": 0.5}) for s in (0, 1))
    return Report(
        scenario=scenario,
        scenario_hash="ab" * 32,
        method=method,
        distribution="mu-bench",
        version="0.1.0",
        params={},
        preset=None,
        budget_seconds=10.0,
        device="cpu",
        torch_version="x",
        harness_version="0.1.0",
        reads="forget",
        in_scope=True,
        seeds=seeds,
        metrics={"forget_acc": 0.5, "avg_gap": 0.1},
        reference={"gold": {"forget_acc": 0.4}},
    )


def check_find_submission(uri: str) -> None:
    """The store contract a resumed grid relies on, for any tracking URI (the slow suite
    runs it against a PostgreSQL-backed server)."""
    from mu_bench.leaderboard import ranking

    k1, k2 = key(), key(seeds=3)
    assert store.find_submission(uri, "digits-random10", k1) is None
    first = store.record(report(), uri, key=k1).run_id
    store.record(report("finetune"), uri)  # no key: never found
    assert store.find_submission(uri, "digits-random10", k1) == first
    assert store.find_submission(uri, "digits-random10", k2) is None
    assert store.find_submission(uri, "digits-class3", k1) is None  # another board

    # A record cut short (the process died inside `record`): not found, then discarded.
    c = store.client(uri)
    exp = c.get_experiment_by_name(store.experiment_name("digits-random10"))
    cut = c.create_run(
        exp.experiment_id, tags={store.KEY_TAG: k2, "mu_bench.kind": "submission"}
    ).info.run_id
    seed_run = c.create_run(exp.experiment_id, tags={"mlflow.parentRunId": cut}).info.run_id
    assert store.find_submission(uri, "digits-random10", k2) is None
    assert store.discard_incomplete(uri, "digits-random10", k2) == [cut]
    assert c.get_run(cut).info.lifecycle_stage == "deleted"
    assert c.get_run(seed_run).info.lifecycle_stage == "deleted"
    assert store.discard_incomplete(uri, "digits-random10", k1) == []  # complete: kept
    board = ranking.load(uri, "digits-random10")
    assert cut not in set(board["run_id"]) and first in set(board["run_id"])
    with pytest.raises(ValueError, match="64 lowercase hex"):
        store.find_submission(uri, "digits-random10", "x' or '1' = '1")


def test_find_submission_in_sqlite(tmp_path):
    check_find_submission(f"sqlite:///{tmp_path / 'board.db'}")


def test_find_submission_creates_no_store(tmp_path):
    db = tmp_path / "none.db"
    assert store.find_submission(f"sqlite:///{db}", "digits-random10", key()) is None
    assert not db.exists()


def test_an_experiment_created_meanwhile_by_another_process_is_used(tmp_path, monkeypatch):
    """Two submits into a server store race to create a scenario's experiment (no file
    lock there): the loser uses the winner's."""
    uri = f"sqlite:///{tmp_path / 'board.db'}"
    c = store.client(uri)
    made = c.create_experiment(store.experiment_name("digits-random10"))  # the other process
    real = c.get_experiment_by_name
    calls = []

    def not_yet_then_real(name):
        calls.append(name)
        return None if len(calls) == 1 else real(name)  # looked before the other created it

    monkeypatch.setattr(c, "get_experiment_by_name", not_yet_then_real)
    assert store._experiment_id(c, "http://127.0.0.1:1", "digits-random10") == made
    assert len(calls) == 2


def test_figures_drawn_while_recording_are_logged_and_a_record_without_them_is_deleted(
    tmp_path,
):
    """`record` asks for the figures (drawn meanwhile by the harness) after logging the
    rest: they land in the run; when asking raises (the harness ended before sending
    them), the record and its seed runs are deleted and the error raised."""
    from mlflow.entities import ViewType
    from PIL import Image

    from mu_bench.leaderboard import ranking

    uri = f"sqlite:///{tmp_path / 'board.db'}"
    png = tmp_path / "histograms.png"
    Image.new("RGB", (4, 4)).save(png)
    asked = []

    def drawn():
        asked.append(store.find_submission(uri, "digits-random10", key()))
        return {"histograms": png}

    kept = store.record(report(), uri, figures=drawn, key=key()).run_id
    assert asked == [None]  # asked before the record was complete
    c = store.client(uri)
    assert [f.path for f in c.list_artifacts(kept, "figures")] == ["figures/histograms.png"]
    assert store.find_submission(uri, "digits-random10", key()) == kept

    def gone():
        raise RuntimeError("the harness ended before sending the figures")

    with pytest.raises(RuntimeError, match="before sending the figures"):
        store.record(report("finetune"), uri, figures=gone, key=key(seeds=3))
    assert store.find_submission(uri, "digits-random10", key(seeds=3)) is None
    exp = c.get_experiment_by_name(store.experiment_name("digits-random10"))
    active = c.search_runs([exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY)
    kinds = {"submission", "seed"}
    left = {
        r.data.tags["mu_bench.method"] for r in active if r.data.tags.get("mu_bench.kind") in kinds
    }
    assert left == {"noop"}
    assert set(ranking.load(uri, "digits-random10")["run_id"]) == {kept}


def test_a_submit_that_ends_before_sending_its_figures_leaves_no_record(tmp_path):
    """Through the store writer process: the harness started the record, then ended (a
    crash while drawing, a kill) without sending the figures. The writer deletes what it
    logged and exits; the board stays empty."""
    from mlflow.entities import ViewType

    from mu_bench.leaderboard.recorder import Recorder

    uri = f"sqlite:///{tmp_path / 'board.db'}"
    recorder = Recorder()
    recorder.open(uri)
    recorder.begin(report(), key=key())  # read before the end of its stdin, in order
    recorder.abandon()
    assert recorder.proc.wait(60) == 0
    exp = store.client(uri).get_experiment_by_name(store.experiment_name("digits-random10"))
    runs = store.client(uri).search_runs([exp.experiment_id], run_view_type=ViewType.ALL)
    logged = [r for r in runs if r.data.tags.get("mu_bench.kind") in ("submission", "seed")]
    assert len(logged) == 3 and {r.info.lifecycle_stage for r in logged} == {"deleted"}
    assert store.find_submission(uri, "digits-random10", key()) is None


def test_the_store_writer_reads_settings_without_writing_and_reports_failures(tmp_path):
    """What an unsandboxed submit asks before anything runs: the store's settings, read
    by the writer. A store that does not exist yet stays uncreated; one that cannot be
    read raises in the harness with the writer's traceback; a writer that died is
    named as such."""
    from mu_bench.leaderboard.recorder import Recorder, StoreWriteFailed

    absent = tmp_path / "absent" / "board.db"
    recorder = Recorder()
    assert recorder.settings(f"sqlite:///{absent}") == {}
    recorder.abandon()
    assert not absent.parent.exists()

    set_up = f"sqlite:///{tmp_path / 'team.db'}"
    store.set_setting(set_up, store.REQUIRE_SANDBOX, "true")
    (tmp_path / "garbage.db").write_bytes(b"not a database " * 400)
    recorder = Recorder(urgent=True)
    assert recorder.settings(set_up) == {store.REQUIRE_SANDBOX: "true"}
    assert store.requires_sandbox(set_up, recorder.settings)
    with pytest.raises(StoreWriteFailed, match="store writer's traceback"):
        recorder.settings(f"sqlite:///{tmp_path / 'garbage.db'}")
    recorder.proc.kill()
    with pytest.raises(StoreWriteFailed, match="before reading the store's settings"):
        recorder.settings(set_up)
