"""A misbehaving plugin through the real runner and CLI: one submission whose seeds each
fail differently. Every seed gets its status, the well-behaved seed finishes, the exit
code is 0, the store stays readable and no process is left running."""

import os
import time

import psutil
import pytest

from mu_bench.isolation.launch import TOKEN_VAR

from .conftest import PLUGINS, cli, cli_json

EXPECTED = [  # (status, fragment of the error) for seeds 0, 1, ...
    ("error", "RuntimeError: deliberate failure"),
    ("error", "SystemExit: 3"),
    ("timeout", "budget"),
    ("timeout", "budget"),
    ("invalid", "non-finite"),
    ("invalid", "not a 'mlp'"),
    ("invalid", "not a torch.nn.Module"),
    ("crashed", "SIGKILL"),
    ("error", "does not declare that it reads the retain set"),
    ("timeout", "over the 1 s budget"),
    ("ok", ""),  # leaves a detached grandchild behind, which the runner sweeps
    ("ok", ""),
]


def _workers_alive(pid_file: str) -> list[int]:
    """Workers and fork servers of this test's submission (they inherit its environment;
    other mu-bench runs on the same machine carry the token too, but not this file)."""
    alive = []
    for proc in psutil.process_iter(["pid"]):
        try:
            env = proc.environ()
            if TOKEN_VAR in env and env.get("FAULT_PID_FILE") == pid_file:
                alive.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return alive


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chaos")
    env = {
        "MU_BENCH_HOME": str(folder / "home"),
        # The runner's handling of faults, without the sandbox: under it the seed that
        # leaves a child behind could start none, nor write its pid file (the hostile
        # plugins' tests cover the sandboxed runner, `test_hostile.py`).
        "MU_BENCH_SANDBOX": "none",
        "FAULT_PID_FILE": str(folder / "child.pid"),
        "PYTHONPATH": os.pathsep.join([str(PLUGINS / "faults"), os.environ.get("PYTHONPATH", "")]),
    }
    proc = cli(
        "submit", "fault-chaos", "--seeds", str(len(EXPECTED)), "--budget", "1", "--json", env=env
    )
    return proc, env, folder


def test_exit_code_is_0_and_submission_is_partial(chaos):
    proc, _, _ = chaos
    assert proc.returncode == 0, proc.stderr
    assert '"status": "partial"' in proc.stdout


@pytest.mark.parametrize("seed", range(len(EXPECTED)))
def test_each_seed_gets_its_status(chaos, seed):
    import json

    doc = json.loads(chaos[0].stdout)
    status, fragment = EXPECTED[seed]
    got = doc["seeds"][seed]
    assert got["status"] == status, got
    assert fragment in (got["error"] or "")


def test_store_stays_readable_and_shows_the_failures(chaos):
    _, env, _ = chaos
    board = cli_json("leaderboard", "digits-random10", env=env)
    row = board["digits-random10"][0]
    assert row["method"] == "fault-chaos" and row["status"] == "partial"
    assert row["seeds_ok"] == 2 and row["seeds"] == len(EXPECTED)


def test_no_process_is_left_behind(chaos):
    _, _, folder = chaos
    pid = int((folder / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"detached grandchild {pid} still running"
        time.sleep(0.1)
    assert _workers_alive(str(folder / "child.pid")) == []


def test_worker_gets_only_its_declared_inputs(tmp_path):
    work = tmp_path / "work"
    proc = cli("submit", "noop", "--seeds", "1", "--keep-work", env={"MU_BENCH_WORK": str(work)})
    assert proc.returncode == 0, proc.stderr
    task = next(work.rglob("request.json"))
    assert {p.name for p in (task.parent / "inputs").iterdir()} == {"model.pt"}
    assert os.environ["MU_BENCH_HOME"] not in task.read_text()
    assert os.environ["MU_BENCH_CACHE"] not in task.read_text()
