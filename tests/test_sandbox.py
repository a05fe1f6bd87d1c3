"""The sandbox primitive (`mu_bench.isolation.sandbox`) against the hostile plugins.

Each mode runs `tests/sandbox_child.py` once: a grandparent and a "fork server" that forks
one worker per attack, the way the harness will. Every attack runs in a world of its own
(a fake cache with a gold model, a store, a test set, another seed's result, inputs that
are hard links into the cache) and a TCP and a UDP listener on 127.0.0.1. The control run
(unconfined) shows each attack works; the confined runs show it fails: the files stay
unread and unchanged, the listeners get nothing, the parent and grandparent live, each
resource breach ends the worker with the right reason, and a normal worker still
imports, trains and writes. The same runs again as an unprivileged user.

About 40 s in all on two busy cores (four helper runs; the searches are capped at 2 s).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from mu_bench.isolation import sandbox

from .unprivileged import USER, ensure_user, interpreter_for

HERE = Path(__file__).parent
HOSTILE = HERE / "plugins" / "hostile"
CHILD = HERE / "sandbox_child.py"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")
needs_landlock = pytest.mark.skipif(sandbox.landlock_abi() < 6, reason="Landlock ABI < 6")
needs_bwrap = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="no usable bubblewrap")

MiB = 1 << 20
MEMORY_CAP = 1536 * MiB  # above the ~0.9 GiB a forked torch process starts with
FILE_CAP = 32 * MiB
LOG_CAP = 1 * MiB


# --- unit tests of the pieces -----------------------------------------------------------
def test_classify_names_each_limit():
    p = sandbox.Policy(memory_bytes=4 << 30, file_bytes=1 << 30, log_bytes=16 * MiB)
    assert sandbox.classify(-signal.SIGXFSZ, "", p) == "file size limit 1 GiB"
    assert sandbox.classify(-signal.SIGSYS, "", p).startswith("process limit 1")
    assert sandbox.classify(1, "Traceback...\nMemoryError", p) == "memory limit 4 GiB"
    assert (
        sandbox.classify(1, "RuntimeError: DefaultCPUAllocator: can't allocate memory", p)
        == "memory limit 4 GiB"
    )
    assert sandbox.classify(1, "OSError: [Errno 27] File too large", p) == "file size limit 1 GiB"
    assert sandbox.classify(-9, "", p, log_over=True) == "log limit 16 MiB"
    assert sandbox.classify(1, "ValueError: bad input", p) is None
    assert sandbox.classify(-signal.SIGKILL, "", p) is None
    many = replace(p, max_processes=8)
    assert sandbox.classify(1, "BlockingIOError: [Errno 11]", many) == "process limit 8"


def test_cap_log_truncates_with_marker(tmp_path):
    log = tmp_path / "stdout.log"
    log.write_bytes(b"x" * 5000)
    p = sandbox.Policy(log_bytes=1000)
    assert sandbox.log_breach([log], p)
    assert sandbox.cap_log(log, 1000)
    data = log.read_bytes()
    assert data.startswith(b"x" * 1000) and b"log truncated at 1000 B" in data
    assert len(data) < 1100
    assert not sandbox.cap_log(log, 10_000)  # under the cap: untouched


def test_cap_log_does_not_follow_links(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"v" * 5000)
    (tmp_path / "stdout.log").symlink_to(victim)
    assert not sandbox.cap_log(tmp_path / "stdout.log", 10)
    assert victim.read_bytes() == b"v" * 5000


def test_policy_round_trips_and_keeps_forbidden_folders_out(tmp_path):
    store = tmp_path / "runs"
    store.mkdir()
    sys.path.insert(0, str(tmp_path))  # e.g. the current folder on sys.path holds the store
    try:
        p = sandbox.worker_policy(tmp_path / "seed", [tmp_path / "in.pt"], [store])
    finally:
        sys.path.remove(str(tmp_path))
    assert str(tmp_path) not in p.read and str(store) not in p.read
    assert all(r != "/root" and r != str(Path.home()) for r in p.read)
    assert p.write == (str(tmp_path / "seed"),) and p.inputs == (str(tmp_path / "in.pt"),)
    assert sandbox.Policy.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_seccomp_program_is_well_formed():
    for arch in ("x86_64", "aarch64"):
        prog = sandbox.seccomp_program(arch, no_processes=True)
        assert len(prog) % 8 == 0 and len(prog) // 8 < 4096
        for i in range(0, len(prog), 8):  # every jump lands inside the program
            code, jt, jf, _ = struct.unpack("=HBBI", prog[i : i + 8])
            if code & 0x07 == 0x05:
                assert i // 8 + 1 + max(jt, jf) < len(prog) // 8


def test_detect_honours_the_override(monkeypatch):
    assert sandbox.detect() in sandbox.MECHANISMS
    monkeypatch.setenv(sandbox.FORCE_VAR, "none")
    assert sandbox.detect() == "none"
    monkeypatch.setenv(sandbox.FORCE_VAR, "chroot")
    with pytest.raises(ValueError, match="valid values"):
        sandbox.detect()


def test_bwrap_command_binds_parents_before_children():
    p = sandbox.Policy(read=("/usr",), inputs=("/etc/hostname",), write=("/etc",))
    if sandbox.bwrap_path() is None:
        with pytest.raises(sandbox.SandboxError):
            sandbox.bwrap_command(["true"], p)
        return
    cmd = sandbox.bwrap_command(["true"], p)
    assert cmd.index("/etc") < cmd.index("/etc/hostname")
    assert "--unshare-all" in cmd and "--die-with-parent" in cmd


@needs_bwrap
def test_host_pid_finds_a_process_inside_bwrap():
    import psutil

    p = sandbox.Policy(read=sandbox.SYSTEM_READ)
    cmd = sandbox.bwrap_command(["sh", "-c", "echo $$; exec sleep 30"], p)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        ns_pid = int(proc.stdout.readline())
        assert ns_pid < 10  # a fresh PID namespace
        host = sandbox.host_pid(proc.pid, ns_pid)
        assert host is not None and host != ns_pid
        deadline = time.monotonic() + 5  # `echo` runs before `exec sleep`
        while psutil.Process(host).cmdline()[:1] != ["sleep"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert psutil.Process(host).cmdline()[:1] == ["sleep"]
    finally:
        proc.kill()
        proc.wait()


# --- the hostile runs -------------------------------------------------------------------
@dataclass
class World:
    root: Path
    cache: Path
    store: Path
    data: Path
    work: Path
    results: Path
    inputs: list[Path]
    watched: dict[str, str] = field(default_factory=dict)  # path -> sha256 before the run
    tcp: socket.socket | None = None
    udp: socket.socket | None = None
    decoys: list[subprocess.Popen] = field(default_factory=list)
    owner: int | None = None

    def forbidden(self) -> list[str]:
        return [str(p) for p in (self.cache, self.store, self.data, self.work)]

    def secrets(self) -> list[Path]:
        return [Path(p) for p in self.watched]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_world(owner: int | None) -> World:
    import torch

    root = Path(tempfile.mkdtemp(prefix="mu-bench-sbx-"))
    w = World(
        root,
        root / "cache",
        root / "store",
        root / "data",
        root / "work",
        root / "results",
        [],
    )
    gold = w.cache / "gold" / "ab12" / "weights.pt"
    original = w.cache / "original" / "cd34" / "weights.pt"
    for path in (gold, original):
        path.parent.mkdir(parents=True)
        torch.save({"weight": torch.randn(4, 3)}, path)
    (w.store / "artifacts" / "run1").mkdir(parents=True)
    (w.store / "mlflow.db").write_bytes(b"SQLite format 3\0" + b"\1" * 4096)
    torch.save({"weight": torch.randn(4, 3)}, w.store / "artifacts" / "run1" / "model.pt")
    w.data.mkdir()
    torch.save({"x": torch.randn(10, 3), "y": torch.arange(10)}, w.data / "test_set.pt")
    sub = w.work / "digits-x-1234"
    (sub / "inputs").mkdir(parents=True)
    os.link(original, sub / "inputs" / "original.pt")  # as cache.link_or_copy does
    torch.save({"x": torch.randn(5, 3), "y": torch.arange(5)}, sub / "inputs" / "forget.pt")
    (sub / "seed-other").mkdir()
    torch.save({"weight": torch.randn(4, 3)}, sub / "seed-other" / "unlearned.pt")
    w.inputs = [sub / "inputs" / "original.pt", sub / "inputs" / "forget.pt"]
    w.results.mkdir()
    for path in (
        gold,
        original,
        w.store / "mlflow.db",
        w.store / "artifacts" / "run1" / "model.pt",
        w.data / "test_set.pt",
        sub / "seed-other" / "unlearned.pt",
    ):
        w.watched[str(path)] = _sha(path)
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(Path(folder) / name, 0o644)
    w.owner = owner
    if owner is not None:
        for folder, _dirs, files in os.walk(root):
            os.chown(folder, owner, owner)
            for name in files:
                os.chown(Path(folder) / name, owner, owner)
    w.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    w.tcp.bind(("127.0.0.1", 0))
    w.tcp.listen(8)
    w.tcp.setblocking(False)
    w.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    w.udp.bind(("127.0.0.1", 0))
    w.udp.setblocking(False)
    w.decoys = [  # stand-ins for the fork server and other seeds' workers
        subprocess.Popen(["sleep", "300"], start_new_session=True) for _ in range(2)
    ]
    return w


def close_world(w: World) -> None:
    for decoy in w.decoys:
        if decoy.poll() is None:
            decoy.kill()
        decoy.wait()
    for s in (w.tcp, w.udp):
        if s is not None:
            s.close()
    shutil.rmtree(w.root, ignore_errors=True)


def tcp_received(w: World) -> bytes:
    got = b""
    while True:
        try:
            conn, _ = w.tcp.accept()
        except BlockingIOError:
            return got
        conn.settimeout(2)
        try:
            got += conn.recv(1024) or b"<connected>"
        except OSError:
            got += b"<connected>"
        conn.close()


def udp_received(w: World) -> bytes:
    try:
        return w.udp.recv(1024)
    except BlockingIOError:
        return b""


ATTACK_LIMITS = {  # attack -> (policy limits, environment)
    "benign": ({}, {}),
    "find-models": ({}, {}),
    "read-secrets": ({}, {}),
    "tcp": ({}, {}),
    "udp": ({}, {}),
    "overwrite": ({}, {}),
    "flood": ({"log_bytes": LOG_CAP}, {"MU_BENCH_HOSTILE_BYTES": str(64 * MiB)}),
    "memory": ({"memory_bytes": MEMORY_CAP}, {"MU_BENCH_HOSTILE_BYTES": str(4096 * MiB)}),
    "fork": ({}, {"MU_BENCH_HOSTILE_FORKS": "20"}),
    "big-file": ({"file_bytes": FILE_CAP}, {"MU_BENCH_HOSTILE_BYTES": str(128 * MiB)}),
    "kill": ({}, {}),  # last: in the control run it ends the helper
}
# Unconfined, each attack is bounded so that it succeeds without hurting the machine.
CONTROL_ENV = {
    "flood": {"MU_BENCH_HOSTILE_BYTES": str(4 * MiB)},
    "memory": {"MU_BENCH_HOSTILE_BYTES": str(256 * MiB)},
    "fork": {"MU_BENCH_HOSTILE_FORKS": "5"},
    "big-file": {"MU_BENCH_HOSTILE_BYTES": str(FILE_CAP * 2)},
}


def jobs_for(w: World, mechanism: str, extra: tuple[str, ...] = ()) -> list[dict]:
    base_env = {
        "MU_BENCH_HOSTILE_TARGETS": os.pathsep.join(w.forbidden()),
        "MU_BENCH_HOSTILE_PORT": str(w.tcp.getsockname()[1]),
        "MU_BENCH_HOSTILE_UDP_PORT": str(w.udp.getsockname()[1]),
        "MU_BENCH_HOSTILE_VICTIMS": ",".join(str(d.pid) for d in w.decoys),
        "MU_BENCH_HOSTILE_SECONDS": "2",
    }
    jobs = []
    names = [*[a for a in ATTACK_LIMITS if a != "kill"], *extra, "kill"]
    for name in names:
        attack = "fork" if name == "fork-nproc" else name
        limits, env = ATTACK_LIMITS.get(name, ({}, {}))
        if name == "fork-nproc":
            limits, env = {"max_processes": 8}, {"MU_BENCH_HOSTILE_FORKS": "50"}
        if mechanism == "unconfined":
            limits, env = {}, CONTROL_ENV.get(name, env)
        seed = w.work / "digits-x-1234" / f"seed-{name}"
        seed.mkdir(mode=0o755)
        if w.owner is not None:
            os.chown(seed, w.owner, w.owner)
        jobs.append(
            {
                "name": name,
                "attack": attack,
                "seed_dir": str(seed),
                "inputs": [str(p) for p in w.inputs],
                "policy_limits": limits,
                "env": {**base_env, **env},
                "timeout": 60,
            }
        )
    return jobs


@dataclass
class Run:
    world: World
    mechanism: str
    returncode: int
    records: dict[str, dict]
    pids: dict[str, int]
    stderr: str


def run_mode(mechanism: str, user: str | None = None, extra: tuple[str, ...] = ()) -> Run:
    uid = pwd.getpwnam(user).pw_uid if user else None
    interp = interpreter_for(user)
    if interp is None:
        pytest.skip(f"no Python that {user or 'this user'} can run with torch")
    argv, env = interp
    w = make_world(uid)
    try:
        jobs = jobs_for(w, mechanism, extra)
        spec = {
            "mechanism": mechanism,
            "plugin_dir": str(HOSTILE),
            "results": str(w.results),
            "forbidden": w.forbidden(),
            "extra_reads": [str(HOSTILE), str(HERE)],
            "jobs": jobs,
        }
        spec_path = w.results / "spec.json"
        spec_path.write_text(json.dumps(spec))
        os.chmod(spec_path, 0o644)
        cmd = [*argv, str(CHILD), str(spec_path)]
        if "bwrap" in mechanism:
            cmd = bwrap_wrap(cmd, w, argv, env)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd="/")
        records = {}
        for job in jobs:
            path = w.results / f"{job['name']}.json"
            if path.exists():
                records[job["name"]] = json.loads(path.read_text())
        pids_file = w.results / "pids.json"
        pids = json.loads(pids_file.read_text()) if pids_file.exists() else {}
        return Run(w, mechanism, proc.returncode, records, pids, proc.stderr)
    except BaseException:
        close_world(w)
        raise


def bwrap_wrap(cmd: list[str], w: World, argv: list[str], env: dict) -> list[str]:
    """The helper under bubblewrap, as the fork server will be: the outer view holds the
    interpreter and libraries, the inputs read-only, the work and results folders."""
    user_prefix = argv[: argv.index("--") + 1] if "--" in argv else []
    inner = cmd[len(user_prefix) :]
    forbidden = json.dumps(w.forbidden())
    reads = subprocess.run(  # the interpreter's own view of what it needs
        [
            *argv,
            "-c",
            "import json; from mu_bench.isolation import sandbox as s; "
            f"print(json.dumps(s.SYSTEM_READ + s.python_reads(json.loads({forbidden!r}))))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    read = tuple(json.loads(reads.stdout)) + (str(HOSTILE), str(HERE))
    outer = sandbox.Policy(read=read, inputs=tuple(str(p) for p in w.inputs))
    return [
        *user_prefix,
        *sandbox.bwrap_command(inner, outer, write_roots=[str(w.work), str(w.results)]),
    ]


@pytest.fixture(scope="module")
def control():
    run = run_mode("unconfined")
    yield run
    close_world(run.world)


@pytest.fixture(scope="module", params=["landlock", "landlock+bwrap", "unprivileged"])
def confined(request):
    if request.param in ("landlock", "unprivileged") and sandbox.landlock_abi() < 6:
        pytest.skip("Landlock ABI < 6")
    if request.param == "landlock+bwrap" and (
        sandbox.bwrap_path() is None or sandbox.landlock_abi() < 6
    ):
        pytest.skip("needs bubblewrap and Landlock")
    if request.param == "unprivileged":
        if os.geteuid() != 0:
            pytest.skip("already unprivileged: the other modes cover it")
        uid = ensure_user()
        if uid is None:
            pytest.skip("cannot create an unprivileged user")
        run = run_mode("landlock", user=USER, extra=("fork-nproc",))
    else:
        run = run_mode(request.param)
    yield run
    close_world(run.world)


# The control run: each attack works when nothing confines it (so the tests can fail).
def test_control_attacks_succeed_unconfined(control):
    r, w = control.records, control.world
    stolen = r["find-models"]["attack"]["readable"]
    assert any(str(w.cache) in p for p in stolen), stolen
    read = r["read-secrets"]["attack"]["read"]
    assert any("mlflow.db" in p for p in read) and any("test_set.pt" in p for p in read)
    assert b"stolen" in tcp_received(w) and b"stolen" in udp_received(w)
    assert r["overwrite"]["attack"]["overwritten"]
    assert r["flood"]["attack"]["written"] >= 4 * MiB
    assert r["memory"]["attack"]["allocated"] >= 256 * MiB
    assert r["fork"]["attack"]["started"] == 5
    assert r["big-file"]["attack"]["written"] >= 2 * FILE_CAP
    assert r["benign"]["benign"]["trained"]
    # kill: the parent and grandparent died with it, and so did the decoys
    assert control.returncode == -signal.SIGKILL
    time.sleep(0.2)
    assert all(d.poll() is not None for d in w.decoys)  # reaped: they died


# The confined runs, one test per requirement.
def test_permitted_work_still_runs(confined):
    rec = confined.records["benign"]
    assert rec["code"] == 0, rec["error"]
    assert rec["benign"]["trained"] and len(rec["benign"]["inputs"]) == 2
    assert rec["benign"]["tmp"].startswith(str(confined.world.work))
    assert rec["confinement"]["seccomp"] and rec["confinement"]["landlock_abi"] >= 6


def test_file_search_finds_no_model(confined):
    attack = confined.records["find-models"]["attack"]
    assert attack["attack"] == "find-models"  # it ran
    assert attack["readable"] == [] and attack["best"] is None


def test_store_and_test_set_stay_unread(confined):
    attack = confined.records["read-secrets"]["attack"]
    assert attack["attack"] == "read-secrets"
    leaked = [p for p in attack["read"] if not p.startswith(("/usr", "/etc", "/proc/self"))]
    assert leaked == [], leaked


def test_no_network_tcp_or_udp(confined):
    tcp, udp = confined.records["tcp"]["attack"], confined.records["udp"]["attack"]
    assert not tcp["connected"] and "error" in tcp
    assert udp["sent"] == 0 and "error" in udp
    assert tcp_received(confined.world) == b"" and udp_received(confined.world) == b""


def test_no_file_outside_the_seed_folder_changes(confined):
    attack = confined.records["overwrite"]["attack"]
    assert attack["attack"] == "overwrite"
    assert attack["overwritten"] == [] and attack["planted"] == []
    for path, before in confined.world.watched.items():
        assert _sha(Path(path)) == before, f"{path} changed"
    for path in confined.world.inputs:  # hard links into the cache: read-only
        assert b"PWNED" not in Path(path).read_bytes()[:64]


def test_log_flood_is_cut_with_a_marker(confined):
    rec = confined.records["flood"]
    assert rec["log_over"] and rec["reason"] == "log limit 1 MiB"
    seed = Path(confined.world.work / "digits-x-1234" / "seed-flood")
    for name in ("stdout.log", "stderr.log"):
        data = (seed / name).read_bytes()
        assert len(data) <= LOG_CAP + 200
    assert b"log truncated at 1 MiB" in (seed / "stdout.log").read_bytes()[-200:]


def test_memory_cap_ends_the_worker_with_a_reason(confined):
    rec = confined.records["memory"]
    assert rec["code"] != 0 and rec["reason"] == "memory limit 1.5 GiB", rec
    assert rec["attack"]["allocated"] < MEMORY_CAP


def test_fork_bomb_is_stopped(confined):
    rec = confined.records["fork"]
    assert rec["code"] == -signal.SIGSYS and rec["attack"]["started"] == 0
    assert rec["reason"].startswith("process limit 1")


def test_huge_file_is_stopped(confined):
    rec = confined.records["big-file"]
    assert rec["code"] == -signal.SIGXFSZ and rec["reason"] == "file size limit 32 MiB"
    huge = confined.world.work / "digits-x-1234" / "seed-big-file" / "huge.bin"
    assert huge.stat().st_size <= FILE_CAP


def test_parent_grandparent_and_others_survive(confined):
    rec = confined.records["kill"]
    results = rec["attack"]["results"]
    assert {str(confined.pids["parent"]), str(confined.pids["grandparent"])} <= set(results)
    assert not any(v == "killed" for v in results.values()), results
    assert confined.returncode == 0, confined.stderr[-2000:]
    assert all(d.poll() is None for d in confined.world.decoys)


def test_process_cap_above_one_for_an_unprivileged_user(confined):
    if "fork-nproc" not in confined.records:
        pytest.skip("RLIMIT_NPROC is only enforced for unprivileged users")
    rec = confined.records["fork-nproc"]
    assert rec["code"] != 0 and rec["reason"] == "process limit 8", rec
    assert 0 < rec["attack"]["started"] <= 8


@needs_bwrap
def test_a_writable_folder_under_a_readable_one_stays_writable(tmp_path):
    """A job root inside an import root (Dask puts its worker's folder on `sys.path`):
    bubblewrap mounts parents first, so the read-only parent does not hide the
    read-write child, and the child is writable inside the sandbox."""
    readable = tmp_path / "on-sys-path"
    writable = readable / "jobs"
    writable.mkdir(parents=True)
    policy = sandbox.Policy(read=(str(readable), *_python_reads()))
    argv = sandbox.bwrap_command(
        [sys.executable, "-c", f"open({str(writable / 'x')!r}, 'w').write('ok')"],
        policy,
        write_roots=[str(writable)],
    )
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (writable / "x").read_text() == "ok"
    with pytest.raises(subprocess.CalledProcessError):  # the parent stays read-only
        subprocess.run(
            sandbox.bwrap_command(
                [sys.executable, "-c", f"open({str(readable / 'y')!r}, 'w')"],
                policy,
                write_roots=[str(writable)],
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )
    assert not (readable / "y").exists()


def _python_reads() -> tuple[str, ...]:
    """What an interpreter needs to start: its prefixes and the system libraries."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr", "/lib", "/lib64", "/etc"}
    return tuple(sorted(p for p in paths if os.path.exists(p)))
