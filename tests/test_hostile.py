"""Hostile plugins through the real CLI, in this machine's sandbox.

Each plugin of `tests/plugins/hostile/` (its own entry point, one attack each) is
submitted with `mu-bench submit --seeds 1` on a copy of digits-class3 with small limits
(1 MiB logs, 64 MiB files; `--memory 1.5GiB` for the memory attack), with a TCP and a
UDP listener on 127.0.0.1 and the harness's folders (home and store, cache, work root)
named as targets. For each: the submit exits 0, the seed has a named status, the attack
failed (its own record, `attack.json`, kept with `--keep-work`, says so, and the files it
aimed at are unchanged), and no process is left. Around them: a `finetune` submit before
and after gives the same numbers (the store and the cache are intact), and the same
`finetune` with the sandbox forced off (`MU_BENCH_SANDBOX=none`) gives them too, tagged
unverified. The whole suite runs twice: as we are (root in CI), and as an unprivileged
user (created when we are root). Plus `--require-sandbox`, `$MU_BENCH_REQUIRE_SANDBOX`
and the store-wide setting refusing to run unsandboxed: exit 2, nothing written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import psutil
import pytest

from mu_bench.isolation import sandbox

from .conftest import PLUGINS, cli
from .unprivileged import USER, ensure_user, give, interpreter_for

MECHANISM = sandbox.detect() if sys.platform == "linux" else "none"
pytestmark = pytest.mark.skipif(MECHANISM == "none", reason="no sandbox on this machine")
# The CLI suite is 14 submits per user (minutes on these machines): slow. The same
# attacks run in the default suite against the sandbox itself, in a bare forked worker
# confined by `sandbox.confine` (test_sandbox.py).

MiB = 1 << 20
# plugin -> (status, fragment of the seed's error)
EXPECTED = {
    "hostile-find-models": ("ok", ""),
    "hostile-read-secrets": ("ok", ""),
    "hostile-tcp": ("ok", ""),
    "hostile-udp": ("ok", ""),
    "hostile-kill": ("ok", ""),
    "hostile-overwrite": ("ok", ""),
    "hostile-flood": ("crashed", "log limit 1 MiB"),
    "hostile-memory": ("crashed", "memory limit 1.5 GiB"),
    "hostile-fork": ("crashed", "process limit 1"),
    "hostile-big-file": ("crashed", "file size limit 64 MiB"),
}
EXTRA_ARGS = {"hostile-memory": ["--memory", "1.5GiB"]}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): _sha(p) for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".lock"}


@dataclass
class Suite:
    """One run of every hostile plugin, as one user."""

    user: str
    folder: Path
    argv: list[str]
    env: dict[str, str]
    tcp: socket.socket
    udp: socket.socket
    runs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    docs: dict[str, dict] = field(default_factory=dict)
    cache_before: dict[str, str] = field(default_factory=dict)
    cache_after: dict[str, str] = field(default_factory=dict)
    report_before: tuple[Path, str] | None = None  # the first run's report.json, hashed
    leftovers: dict[str, list[int]] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def work(self) -> Path:
        return self.folder / "work"

    @property
    def cache(self) -> Path:
        return Path(self.env["MU_BENCH_CACHE"])

    @property
    def scenario(self) -> Path:
        return self.folder / "digits-class3-hostile.toml"

    def submit(self, method: str, *args: str, env: dict | None = None):
        marker = uuid.uuid4().hex
        full_env = {**self.env, "MU_BENCH_HOSTILE_RUN": marker, **(env or {})}
        cmd = [*self.argv, "-m", "mu_bench", "submit", method, "-s", str(self.scenario)]
        cmd += ["--seeds", "1", "--no-figures", "--keep-work", "--json", *args]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=full_env, timeout=600, cwd=self.folder
        )
        self.leftovers[method] = _still_running(marker)
        return proc

    def attack(self, method: str) -> dict:
        found = sorted(self.work.glob(f"*-{method}-*/seed-0/output/attack.json"))
        return json.loads(found[-1].read_text()) if found else {}

    def job(self, method: str) -> Path:
        return sorted(self.work.glob(f"*-{method}-*/seed-0"))[-1]


def _still_running(marker: str, wait: float = 5.0) -> list[int]:
    """Processes of that submit still alive (they carry its marker in their environment)."""
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for proc in psutil.process_iter(["pid"]):
            try:
                mine = proc.environ().get("MU_BENCH_HOSTILE_RUN") == marker
                if mine and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc.pid)
            except (psutil.Error, OSError):
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _scenario_text() -> str:
    text = (resources.files("mu_bench") / "scenarios" / "digits-class3.toml").read_text()
    text = text.replace('name = "digits-class3"', 'name = "digits-class3-hostile"')
    return text + '\n[limits]\nfile_size = "64 MiB"\nlog_size = "1 MiB"\n'


def _listeners() -> tuple[socket.socket, socket.socket]:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    return tcp, udp


def received(suite: Suite) -> bytes:
    got = b""
    while True:
        try:
            conn, _ = suite.tcp.accept()
        except BlockingIOError:
            break
        conn.settimeout(2)
        try:
            got += conn.recv(1024) or b"<connected>"
        except OSError:
            got += b"<connected>"
        conn.close()
    with contextlib.suppress(BlockingIOError):
        got += suite.udp.recv(1024)
    return got


def _make_suite(mode: str, folder: Path, shared_cache: Path) -> Suite:
    uid = None
    if mode == "unprivileged":
        if os.geteuid() != 0:
            pytest.skip("already unprivileged: the first run covers it")
        uid = ensure_user()
        if uid is None:
            pytest.skip("cannot create an unprivileged user here")
    interp = interpreter_for(USER if uid is not None else None)
    if interp is None:
        pytest.skip(f"{USER} cannot run this venv's Python with torch (files not readable)")
    argv, env = interp
    plugin = subprocess.run(
        [*argv, "-c", "import mu_bench_hostile"],
        env={
            **env,
            "PYTHONPATH": os.pathsep.join(
                filter(None, (env.get("PYTHONPATH"), str(PLUGINS / "hostile")))
            ),
        },
        capture_output=True,
        cwd="/",
    )
    if plugin.returncode != 0:
        pytest.skip(f"the hostile plugins are not readable here: {plugin.stderr[-300:]!r}")
    cache = shared_cache
    if uid is not None:  # its own copy of the prepared models: it must write lock files
        cache = folder / "cache"
        shutil.copytree(shared_cache, cache, ignore=shutil.ignore_patterns("*.lock"))
    tcp, udp = _listeners()
    hostile = str(PLUGINS / "hostile")
    env = {
        **env,
        "PYTHONPATH": os.pathsep.join(p for p in (env.get("PYTHONPATH"), hostile) if p),
        "MU_BENCH_HOME": str(folder / "home"),
        "MU_BENCH_CACHE": str(cache),
        "MU_BENCH_WORK": str(folder / "work"),
        "MU_BENCH_HOSTILE_TARGETS": os.pathsep.join(
            str(p) for p in (folder / "home", cache, folder / "work")
        ),
        "MU_BENCH_HOSTILE_PORT": str(tcp.getsockname()[1]),
        "MU_BENCH_HOSTILE_UDP_PORT": str(udp.getsockname()[1]),
        "MU_BENCH_HOSTILE_SECONDS": "2",
    }
    env.pop("MU_BENCH_SANDBOX", None)
    suite = Suite(mode, folder, argv, env, tcp, udp)
    suite.scenario.write_text(_scenario_text())
    if uid is not None:
        os.chmod(folder, 0o755)
        give(folder, uid)
    return suite


@pytest.fixture(scope="module", params=["as-is", "unprivileged"])
def suite(request, tmp_path_factory, shared_cache):
    if request.param == "unprivileged":  # pytest's folders are private to us
        folder = Path(tempfile.mkdtemp(prefix="mu-bench-hostile-"))
        request.addfinalizer(lambda: shutil.rmtree(folder, ignore_errors=True))
    else:
        folder = tmp_path_factory.mktemp("hostile")
    s = _make_suite(request.param, folder, shared_cache)
    try:
        s.runs["before"] = s.submit("finetune")
        assert s.runs["before"].returncode == 0, s.runs["before"].stderr[-3000:]
        s.docs["before"] = json.loads(s.runs["before"].stdout)
        s.cache_before = _hashes(s.cache)
        (report,) = (s.home / "artifacts").rglob("report.json")
        s.report_before = (report, _sha(report))
        for method in EXPECTED:
            s.runs[method] = s.submit(method, *EXTRA_ARGS.get(method, []))
            if s.runs[method].returncode == 0:
                s.docs[method] = json.loads(s.runs[method].stdout)
        s.runs["after"] = s.submit("finetune")
        s.docs["after"] = json.loads(s.runs["after"].stdout or "{}")
        s.runs["unsandboxed"] = s.submit("finetune", env={"MU_BENCH_SANDBOX": "none"})
        s.docs["unsandboxed"] = json.loads(s.runs["unsandboxed"].stdout or "{}")
        s.cache_after = _hashes(s.cache)
        yield s
    finally:
        s.tcp.close()
        s.udp.close()


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("method", list(EXPECTED))
def test_submit_exits_0_and_the_seed_has_a_named_status(suite, method):
    proc = suite.runs[method]
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = suite.docs[method]
    status, fragment = EXPECTED[method]
    seed = doc["seeds"][0]
    assert seed["status"] == status, seed
    assert fragment in (seed["error"] or ""), seed
    assert doc["sandbox"] == MECHANISM
    assert suite.leftovers[method] == [], f"left running: {suite.leftovers[method]}"


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_no_listener_received_anything(suite):
    assert suite.attack("hostile-tcp")["connected"] is False
    assert suite.attack("hostile-udp")["sent"] == 0
    assert received(suite) == b""


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_file_system_search_found_no_model_and_gained_nothing(suite):
    attack = suite.attack("hostile-find-models")
    assert attack["attack"] == "find-models" and attack["readable"] == [], attack
    assert attack["best"] is None
    # it returned the original model: no forgetting, nothing gained
    assert suite.docs["hostile-find-models"]["metrics"]["forget_acc"] >= 0.9


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_store_the_test_set_and_the_cache_stay_unread(suite):
    attack = suite.attack("hostile-read-secrets")
    assert attack["attack"] == "read-secrets"
    leaked = [p for p in attack["read"] if not p.startswith(("/usr", "/etc", "/proc/self"))]
    assert leaked == [], leaked


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_nothing_outside_its_folders_was_overwritten(suite):
    attack = suite.attack("hostile-overwrite")
    assert attack["attack"] == "overwrite"
    assert attack["overwritten"] == [] and attack["planted"] == [], attack


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_processes_above_it_survive(suite):
    results = suite.attack("hostile-kill")["results"]
    assert results and not any(v == "killed" for v in results.values()), results


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_each_limit_stopped_its_attack(suite):
    assert suite.attack("hostile-memory")["allocated"] < 1536 * MiB
    assert suite.attack("hostile-fork")["started"] == 0
    huge = suite.job("hostile-big-file") / "output" / "huge.bin"
    assert huge.stat().st_size <= 64 * MiB
    for name in ("stdout.log", "stderr.log"):
        log = (suite.job("hostile-flood") / name).read_bytes()
        assert len(log) <= MiB + 200
    assert b"log truncated at 1 MiB" in (suite.job("hostile-flood") / "stdout.log").read_bytes()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_store_and_cache_intact_and_results_unchanged(suite):
    after = suite.runs["after"]
    assert after.returncode == 0, after.stderr[-3000:]
    assert suite.cache_after == suite.cache_before
    report, digest = suite.report_before
    assert _sha(report) == digest
    before, again = suite.docs["before"], suite.docs["after"]
    assert before["seeds"][0]["status"] == "ok"
    assert again["seeds"][0]["metrics"] == before["seeds"][0]["metrics"]
    board = subprocess.run(
        [*suite.argv, "-m", "mu_bench", "leaderboard", "digits-class3-hostile", "--all", "--json"],
        capture_output=True,
        text=True,
        env=suite.env,
        cwd=suite.folder,
    )
    assert board.returncode == 0, board.stderr[-3000:]
    rows = json.loads(board.stdout)["digits-class3-hostile"]
    assert {r["method"] for r in rows} == {"finetune", *EXPECTED}


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_normal_method_gives_the_same_numbers_unsandboxed_tagged_unverified(suite):
    off = suite.docs["unsandboxed"]
    assert off["sandbox"] == "none" and suite.docs["before"]["sandbox"] == MECHANISM
    assert off["seeds"][0]["metrics"] == suite.docs["before"]["seeds"][0]["metrics"]
    board = subprocess.run(
        [*suite.argv, "-m", "mu_bench", "leaderboard", "digits-class3-hostile", "--all", "--wide"],
        capture_output=True,
        text=True,
        env={**suite.env, "COLUMNS": "400"},  # one line per row: no wrapped status cell
        cwd=suite.folder,
    )
    assert board.returncode == 0, board.stderr[-3000:]
    rows = [line for line in board.stdout.splitlines() if " finetune" in line]
    assert len(rows) == 3 and sum("unverified" in r for r in rows) == 1, board.stdout


# --- refusing to run unsandboxed --------------------------------------------------------
def _refused(proc, home: Path, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and "Nothing was run or written" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not home.exists()


def test_require_sandbox_refuses_to_run_unsandboxed(home):
    off = {"MU_BENCH_SANDBOX": "none"}
    _refused(cli("submit", "noop", "--require-sandbox", env=off), home, "--require-sandbox")
    env = {**off, "MU_BENCH_REQUIRE_SANDBOX": "1"}
    _refused(cli("submit", "noop", env=env), home, "$MU_BENCH_REQUIRE_SANDBOX")


def test_the_flag_and_the_variable_refuse_before_any_helper_starts(home, run_cli, monkeypatch):
    """Known before anything runs, they refuse before the fork server and the store
    writer start (only the store's own setting needs the writer to read it)."""
    from mu_bench.isolation import launch
    from mu_bench.leaderboard import recorder

    started = []
    monkeypatch.setattr(launch, "prestart", lambda *a, **k: started.append("fork server"))
    monkeypatch.setattr(
        recorder.Recorder, "__init__", lambda *a, **k: started.append("store writer")
    )
    monkeypatch.setenv("MU_BENCH_SANDBOX", "none")
    code, _, err = run_cli("submit", "noop", "--require-sandbox")
    assert code == 2 and "--require-sandbox asks for a sandbox" in err, err
    monkeypatch.setenv("MU_BENCH_REQUIRE_SANDBOX", "1")
    code, _, err = run_cli("submit", "noop")
    assert code == 2 and "$MU_BENCH_REQUIRE_SANDBOX asks for a sandbox" in err, err
    assert started == [] and not home.exists()


def test_a_store_that_requires_a_sandbox_refuses_unsandboxed_submits(tmp_path, home):
    from mu_bench.leaderboard import store

    db = tmp_path / "team" / "mlflow.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    store.set_setting(uri, store.REQUIRE_SANDBOX, "true")
    assert store.requires_sandbox(uri)
    before = _sha(db)
    proc = cli("submit", "noop", "--tracking-uri", uri, env={"MU_BENCH_SANDBOX": "none"})
    _refused(proc, home, f"the store {uri}")
    assert _sha(db) == before


def test_the_harness_never_imports_mlflow_to_submit(tmp_path):
    """MLflow (about 2.5 s of CPU to import) is the store writer's alone. Unsandboxed, the
    store's setting must be read before any plugin code runs: the harness asks the writer
    for it rather than importing MLflow itself. The store exists (a fresh one has no
    settings to read), and its setting allows unsandboxed runs."""
    from mu_bench.leaderboard import store

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    store.set_setting(uri, store.REQUIRE_SANDBOX, "false")
    for forced in ({"MU_BENCH_SANDBOX": "none"}, {}):  # unsandboxed, then this machine's
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "mu_bench", "submit", "noop", "-n", "1"]
            + ["--tracking-uri", uri, "--no-figures"],
            capture_output=True,
            text=True,
            env={**os.environ, **forced},
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        imported = {
            line.rsplit("|", 1)[1].strip()
            for line in proc.stderr.splitlines()
            if line.startswith("import time:")
        }
        assert "torch" in imported  # the harness's imports are listed (not its helpers')
        assert not [m for m in imported if m.split(".")[0] == "mlflow"], forced
        # Unsandboxed, the guard read the store's setting and let the run go on.
        assert ("recorded unverified" in proc.stderr) == bool(forced)
