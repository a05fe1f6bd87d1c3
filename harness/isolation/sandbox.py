"""Confine a worker to its task: what it may read and write, no network, no signals or
tracing outside itself, and caps on memory, file size, logs and processes.

Two kernel mechanisms, layered (measured in `benchmarks/sandbox_start.py`):

- **bubblewrap** (outer, once per fork server, or once per spawned worker): user, PID,
  network, IPC and UTS namespaces and a mount namespace that shows only the read paths
  (read-only), the write roots and a minimal /dev, /proc and /tmp. `bwrap_command`
  builds the command prefix. 40-90 ms per start measured here (a loaded 2-core
  machine), paid once per fork server, and per worker only on the spawn (CUDA) path.
- **In-process confinement** (inner, in every worker, after the fork and before any
  plugin code): `confine(policy)` sets hard resource limits, `no_new_privs`, drops every
  capability, installs a Landlock ruleset (reads, inputs read-only, writes to the seed
  folder only, no TCP bind/connect, signals and abstract unix sockets scoped to the
  worker) and a seccomp filter (no sockets at all, so no UDP or unix-socket connects
  either; no io_uring; no new namespaces; no keyrings; and, with `max_processes=1`, any
  attempt to start a process kills the worker with SIGSYS). About 4 ms per worker.

`detect()` says which of them this machine offers; the run is tagged with it
("landlock+bwrap", "landlock", "bwrap" or "none"). Resource limits and seccomp apply
whatever the tag. The parent turns a breach into a reason with `classify` and caps the
logs with `log_breach` / `cap_log`.

Landlock is driven through its three system calls (444-446) with ctypes: the PyPI
bindings cover file-system rules only (no TCP or scoping), so they would not save code.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

MECHANISMS = ("landlock+bwrap", "landlock", "bwrap", "none")
FORCE_VAR = "MU_BENCH_SANDBOX"  # force a weaker mechanism: "none", "landlock" or "bwrap"
GiB = 1 << 30
MiB = 1 << 20
TRUNCATION_MARKER = "\n[mu-bench: log truncated at {size}: the worker wrote more]\n"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

# --- Landlock (include/uapi/linux/landlock.h) -------------------------------------------
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # every arch
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
INPUT_RIGHTS = FS_READ_FILE | FS_READ_DIR
# No symlinks, fifos, sockets or device nodes: the harness reads this folder afterwards,
# and a symlink named unlearned.pt pointing at a gold model, or a fifo named result.json,
# would turn that read against it. No execute either.
WRITE_RIGHTS = (
    FS_READ_FILE
    | FS_READ_DIR
    | FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_REFER
    | FS_TRUNCATE
)
DEVICE_RIGHTS = FS_READ_FILE | FS_WRITE_FILE | FS_IOCTL_DEV


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


@lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is absent or disabled."""
    if sys.platform != "linux":
        return 0
    version = _libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(1)
    )
    return max(int(version), 0)


# --- seccomp (classic BPF over struct seccomp_data) -------------------------------------
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# The calls the filter touches, per architecture (asm/unistd_64.h).
_NR = {
    "x86_64": dict(
        socket=41, clone=56, fork=57, vfork=58, clone3=435, io_uring_setup=425,
        io_uring_enter=426, io_uring_register=427, unshare=272, setns=308, keyctl=250,
        add_key=248, request_key=249, bpf=321, perf_event_open=298, userfaultfd=323,
        ptrace=101, process_vm_readv=310, process_vm_writev=311, memfd_create=319, mmap=9,
    ),
    "aarch64": dict(
        socket=198, clone=220, clone3=435, io_uring_setup=425, io_uring_enter=426,
        io_uring_register=427, unshare=97, setns=268, keyctl=219, add_key=217,
        request_key=218, bpf=280, perf_event_open=241, userfaultfd=282, ptrace=117,
        process_vm_readv=270, process_vm_writev=271, memfd_create=279, mmap=222,
    ),
}  # fmt: skip
# Refused with EACCES: sockets of every family (the worker needs none; socketpair stays),
# io_uring (it can open sockets behind seccomp's back), new namespaces, keyrings, BPF,
# perf, userfaultfd, tracing, and memfds and shared anonymous mappings (memory that
# RLIMIT_DATA does not count).
_DENIED = (
    "socket", "io_uring_setup", "io_uring_enter", "io_uring_register", "unshare", "setns",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "ptrace",
    "process_vm_readv", "process_vm_writev", "memfd_create",
)  # fmt: skip
_CLONE_THREAD = 0x00010000
_RET_KILL_PROCESS, _RET_ERRNO, _RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_LD_ABS_W, _JEQ, _JGE, _JSET, _RET, _AND = 0x20, 0x15, 0x35, 0x45, 0x06, 0x54
_MAP_SHARED_ANONYMOUS = 0x01 | 0x20


def _bpf(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_program(arch: str, no_processes: bool, shared_memory: bool = False) -> bytes:
    """The filter: refuse `_DENIED` with EACCES; with `no_processes`, kill the worker on
    fork, vfork or a clone that is not a thread (clone3 answers ENOSYS, so libc falls back
    to clone, whose flags the filter can read). `shared_memory` (GPU workers: the CUDA
    driver may use them) lets memfds and shared anonymous mappings through, which the
    memory cap then does not count."""
    nr = _NR[arch]
    denied = [n for n in _DENIED if not (shared_memory and n == "memfd_create")]
    body: list[tuple[int, int]] = [(nr[name], _RET_ERRNO | errno.EACCES) for name in denied]
    if no_processes:
        body += [(nr[n], _RET_KILL_PROCESS) for n in ("fork", "vfork") if n in nr]
        body.append((nr["clone3"], _RET_ERRNO | errno.ENOSYS))
    prog = [
        _bpf(_LD_ABS_W, 4),  # seccomp_data.arch
        _bpf(_JEQ, _AUDIT_ARCH[arch], jt=1),
        _bpf(_RET, _RET_KILL_PROCESS),
        _bpf(_LD_ABS_W, 0),  # seccomp_data.nr
    ]
    if arch == "x86_64":  # the x32 ABI would dodge every number below
        prog += [_bpf(_JGE, 0x40000000, jf=1), _bpf(_RET, _RET_KILL_PROCESS)]
    for number, action in body:
        prog += [_bpf(_JEQ, number, jf=1), _bpf(_RET, action)]
    if not shared_memory:  # mmap with MAP_SHARED and MAP_ANONYMOUS: refused; others pass
        prog += [
            _bpf(_JEQ, nr["mmap"], jf=5),
            _bpf(_LD_ABS_W, 16 + 3 * 8),  # low half of args[3]: the flags
            _bpf(_AND, _MAP_SHARED_ANONYMOUS),
            _bpf(_JEQ, _MAP_SHARED_ANONYMOUS, jf=1),
            _bpf(_RET, _RET_ERRNO | errno.EACCES),
            _bpf(_RET, _RET_ALLOW),
        ]
    if no_processes:
        prog += [
            _bpf(_JEQ, nr["clone"], jf=4),
            _bpf(_LD_ABS_W, 16),  # low half of args[0]: the clone flags
            _bpf(_JSET, _CLONE_THREAD, jt=0, jf=1),
            _bpf(_RET, _RET_ALLOW),
            _bpf(_RET, _RET_KILL_PROCESS),
        ]
    prog.append(_bpf(_RET, _RET_ALLOW))
    return b"".join(prog)


# --- what the machine offers ------------------------------------------------------------
@lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """bubblewrap's path when it is installed and can create its namespaces here."""
    path = shutil.which("bwrap")
    if path is None or sys.platform != "linux":
        return None
    try:
        probe = subprocess.run(
            [path, "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "true"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


def detect() -> str:
    """The strongest mechanism this machine offers, one of `MECHANISMS` (`$MU_BENCH_SANDBOX`
    may ask for a weaker one, for tests and benchmarks)."""
    have_landlock = landlock_abi() >= 1
    have_bwrap = bwrap_path() is not None
    forced = os.environ.get(FORCE_VAR)
    if forced:
        if forced not in MECHANISMS:
            raise ValueError(f"{FORCE_VAR}={forced!r}: valid values are {', '.join(MECHANISMS)}")
        have_landlock &= "landlock" in forced
        have_bwrap &= "bwrap" in forced
    if have_landlock and have_bwrap:
        return "landlock+bwrap"
    return "landlock" if have_landlock else "bwrap" if have_bwrap else "none"


# --- the policy -------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """What one worker may reach. Paths are absolute; a missing path is skipped."""

    read: tuple[str, ...] = ()  # read and execute beneath: interpreter, libraries, plugins
    inputs: tuple[str, ...] = ()  # read only: the seed's input files (or their folder)
    write: tuple[str, ...] = ()  # read and write beneath: the seed folder (temp inside)
    devices: tuple[str, ...] = ()  # device files opened read-write with ioctls (GPU)
    # Private writable memory (RLIMIT_DATA): the heap, anonymous mappings, thread stacks,
    # the fork server's pages the worker inherits (about 0.9 GiB with torch loaded). Not
    # the address space: torch reserves 3.5 GiB of it on import, CUDA terabytes. Shared
    # anonymous mappings and memfds, which it would not count, are refused by seccomp.
    # GPU memory is not capped.
    memory_bytes: int | None = 4 * GiB
    file_bytes: int | None = 1 * GiB  # largest file the worker may write (RLIMIT_FSIZE)
    log_bytes: int = 16 * MiB  # stdout.log and stderr.log each; enforced by the parent
    max_processes: int = 1  # 1: the worker alone (threads are free); see `confine`
    open_files: int = 1024

    def __post_init__(self):
        if self.max_processes < 1:
            raise ValueError("max_processes must be at least 1")

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Policy:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)

    def environment(self, temp: str) -> dict[str, str]:
        """Variables that point every cache and temp file a library writes at `temp`."""
        return {
            "TMPDIR": temp,
            "HOME": temp,
            "XDG_CACHE_HOME": temp,
            "MPLCONFIGDIR": temp,
            "TORCHINDUCTOR_CACHE_DIR": temp,
            "TRITON_CACHE_DIR": temp,
            "CUDA_CACHE_PATH": temp,
        }


def size_text(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


# Read-only system trees and files a Python worker needs (measured with strace on a
# forked and a spawned worker). /etc is listed file by file: it holds secrets.
SYSTEM_READ = (
    "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/opt/conda",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
    "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/os-release",
    "/etc/alternatives", "/etc/ssl/certs",
    "/sys/devices/system/cpu", "/sys/fs/cgroup", "/proc/self", "/proc/cpuinfo",
    "/proc/meminfo", "/proc/stat",
    "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
)  # fmt: skip
# NVIDIA: the device nodes (read-write, with ioctls) and what the driver reads.
GPU_DEVICE_GLOBS = (
    "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset",
    "/dev/nvidia[0-9]*", "/dev/nvidia-caps/*", "/dev/dri/renderD*",
)  # fmt: skip
GPU_READ = (
    "/proc/driver/nvidia", "/sys/bus/pci", "/sys/devices", "/sys/module/nvidia",
    "/usr/local/cuda", "/usr/local/nvidia", "/etc/nvidia", "/run/nvidia-persistenced",
)  # fmt: skip


def gpu_devices() -> tuple[str, ...]:
    import glob

    found: list[str] = []
    for pattern in GPU_DEVICE_GLOBS:
        found += sorted(glob.glob(pattern))
    return tuple(found)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def python_reads(forbidden: Iterable[str | Path] = ()) -> tuple[str, ...]:
    """The interpreter, its standard library and every import root on `sys.path`, less
    any that is, holds or lies inside a forbidden folder (the current folder on sys.path
    may hold the store, say) and any that is or holds the user's home (a venv inside the
    home stays readable). The `mu_bench` package folders are added by name, so an
    editable install still works when its repository root is dropped."""
    banned = [Path(p).absolute() for p in forbidden]
    home = Path.home().absolute()
    candidates = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    candidates += [p for p in sys.path if p and os.path.isabs(p)]
    try:
        import mu_bench
        import mu_bench.methods

        candidates += list(mu_bench.__path__) + list(mu_bench.methods.__path__)
    except ImportError:  # pragma: no cover - the harness always has itself
        pass
    # The interpreter binary may be a symlink out of the venv (pyenv, conda, /usr).
    candidates.append(str(Path(os.path.realpath(sys.executable)).parent.parent))
    out: list[str] = []
    for raw in candidates:
        path = Path(os.path.realpath(raw))
        if not path.exists() or str(path) in out or path == Path("/"):
            continue
        if any(_within(b, path) or _within(path, b) for b in banned) or _within(home, path):
            continue
        out.append(str(path))
    return tuple(out)


def worker_policy(
    seed_dir: str | Path,
    inputs: Iterable[str | Path],
    forbidden: Iterable[str | Path],
    *,
    device: str = "cpu",
    memory_bytes: int | None = 4 * GiB,
    file_bytes: int | None = 1 * GiB,
    log_bytes: int = 16 * MiB,
    max_processes: int = 1,
) -> Policy:
    """The policy of one seed's worker: system and Python reads, its inputs read-only,
    its seed folder read-write (with `tmp/` inside for TMPDIR). `forbidden` lists the
    folders no read grant may cover: the cache, the store, the data root, the work root,
    the user's home (a venv inside it stays readable)."""
    cuda = device.startswith("cuda")
    read = SYSTEM_READ + python_reads(forbidden) + (GPU_READ if cuda else ())
    return Policy(
        read=tuple(dict.fromkeys(read)),
        inputs=tuple(str(Path(p).absolute()) for p in inputs),
        write=(str(Path(seed_dir).absolute()),),
        devices=gpu_devices() if cuda else (),
        memory_bytes=memory_bytes,
        file_bytes=file_bytes,
        log_bytes=log_bytes,
        max_processes=max_processes,
    )


# --- the child's side -------------------------------------------------------------------
class SandboxError(RuntimeError):
    """Confinement could not be applied; the worker must not run the plugin."""


@dataclass
class Confinement:
    """What `confine` put in place, for the run's record."""

    mechanism: str
    landlock_abi: int = 0
    seccomp: bool = False
    limits: dict[str, int] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)


def _close_fds(keep: Sequence[int]) -> None:
    try:
        open_fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        open_fds = list(range(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    for fd in open_fds:
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor: gone
                os.close(fd)


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise SandboxError(f"{what} failed: {os.strerror(err)} (errno {err})")
    return result


def _threads() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 1


def _set_limit(which: int, value: int) -> None:
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))  # hard too: the plugin cannot raise it


def _own_tasks() -> int:
    """Tasks (processes and threads) of this real uid that this process can see, which is
    what RLIMIT_NPROC counts (per user namespace)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


def _apply_limits(policy: Policy, info: Confinement) -> None:
    if policy.memory_bytes is not None:
        _set_limit(resource.RLIMIT_DATA, policy.memory_bytes)
        info.limits["memory"] = policy.memory_bytes
    if policy.file_bytes is not None:
        _set_limit(resource.RLIMIT_FSIZE, policy.file_bytes)
        info.limits["file"] = policy.file_bytes
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_NOFILE, policy.open_files)
    if policy.max_processes > 1:
        # seccomp cannot count; RLIMIT_NPROC counts this uid's tasks, threads included,
        # and is not enforced for root (uid 0, even inside a user namespace).
        if os.getuid() == 0:
            info.gaps.append(f"processes: up to {policy.max_processes} not enforced as root")
        else:
            _set_limit(resource.RLIMIT_NPROC, _own_tasks() + policy.max_processes)
            info.limits["processes"] = policy.max_processes


_PR_SET_PDEATHSIG, _PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 1, 24, 38
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 47, 4, 22, 2


def _prctl(option: int, arg2: int = 0, arg3: int | ctypes.c_void_p = 0) -> int:
    return _libc.prctl(
        ctypes.c_int(option),
        ctypes.c_ulong(arg2),
        arg3 if isinstance(arg3, ctypes.c_void_p) else ctypes.c_ulong(arg3),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
    )


def drop_capabilities() -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets: root, or a
    process holding capabilities in a user namespace, keeps only its uid. Without
    CAP_SYS_RESOURCE it cannot raise the hard limits; without CAP_SYS_ADMIN and
    CAP_SYS_MODULE it cannot reconfigure the kernel."""
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        _prctl(_PR_CAPBSET_DROP, cap)  # EPERM without CAP_SETPCAP: nothing to drop then
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    header = struct.pack("=Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = bytes(24)  # two empty {effective, permitted, inheritable}
    _check(_libc.capset(ctypes.c_char_p(header), ctypes.c_char_p(data)), "capset")


def _landlock(policy: Policy, abi: int, info: Confinement) -> None:
    handled_fs = _handled_fs(abi)
    attr = struct.pack(
        "=QQQ",
        handled_fs,
        NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
        SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL if abi >= 6 else 0,
    )
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    if abi < 4:
        info.gaps.append(f"tcp: not handled by Landlock ABI {abi} (seccomp refuses sockets)")
    if abi < 6:
        info.gaps.append(f"signals: not scoped by Landlock ABI {abi}")
    ruleset = _check(
        _libc.syscall(
            ctypes.c_long(_SYS_CREATE_RULESET),
            ctypes.c_char_p(attr),
            ctypes.c_size_t(size),
            ctypes.c_uint32(0),
        ),
        "landlock_create_ruleset",
    )
    try:
        grants = [(p, READ_RIGHTS) for p in policy.read]
        grants += [(p, INPUT_RIGHTS) for p in policy.inputs]
        grants += [(p, WRITE_RIGHTS) for p in policy.write]
        grants += [(p, DEVICE_RIGHTS) for p in policy.devices]
        grants.append(("/dev/null", FS_READ_FILE | FS_WRITE_FILE))
        for path, rights in grants:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # absent on this machine
            try:
                if not os.path.isdir(f"/proc/self/fd/{fd}"):
                    rights &= _FILE_RIGHTS
                rule = struct.pack("=Qi", rights & handled_fs, fd)
                _check(
                    _libc.syscall(
                        ctypes.c_long(_SYS_ADD_RULE),
                        ctypes.c_int(ruleset),
                        ctypes.c_int(_RULE_PATH_BENEATH),
                        ctypes.c_char_p(rule),
                        ctypes.c_uint32(0),
                    ),
                    f"landlock_add_rule {path}",
                )
            finally:
                os.close(fd)
        _check(
            _libc.syscall(
                ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)
            ),
            "landlock_restrict_self",
        )
    finally:
        os.close(ruleset)
    info.landlock_abi = abi


def _seccomp(policy: Policy, info: Confinement) -> None:
    arch = platform.machine()
    if arch not in _NR:
        info.gaps.append(f"seccomp: no filter for {arch}; sockets and processes not refused")
        return
    prog = seccomp_program(
        arch, no_processes=policy.max_processes == 1, shared_memory=bool(policy.devices)
    )
    if policy.devices:
        info.gaps.append("memory: shared mappings allowed for the GPU driver, not capped")
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("=HxxxxxxQ", len(prog) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    _check(
        _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.c_void_p(ctypes.addressof(fbuf))),
        "seccomp",
    )
    info.seccomp = True


def confine(
    policy: Policy, mechanism: str | None = None, *, keep_fds: Sequence[int] = ()
) -> Confinement:
    """Confine the calling process for good, before it runs any plugin code. Call it in a
    single-threaded process (the child of a fork, or first thing in a fresh interpreter):
    Landlock binds only the calling thread and the ones it starts. Every descriptor above
    2 not in `keep_fds` is closed first: Landlock checks opens, not descriptors already
    open, so one inherited from the fork server would be a way around it. Raises
    SandboxError when a step the mechanism promises fails; the caller must then not run
    the plugin. With `mechanism` "none" only the descriptors, the parent-death signal and
    the resource limits apply (the sandbox forced off, or absent)."""
    mechanism = mechanism or detect()
    info = Confinement(mechanism)
    if _threads() > 1:
        raise SandboxError(f"confine() needs a single-threaded process ({_threads()} threads)")
    _close_fds(keep_fds)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the worker dies with its parent
    # Python ignores SIGXFSZ; the default action makes a file-size breach the kernel's
    # word (the worker dies of SIGXFSZ) rather than an OSError the plugin could swallow.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    _apply_limits(policy, info)
    if mechanism == "none":  # the sandbox is off: the resource limits alone
        if policy.max_processes == 1:
            info.gaps.append("processes: not capped without seccomp")
        info.gaps.append("files, network, signals: not confined (no sandbox)")
        return info
    _check(_prctl(_PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    drop_capabilities()
    if "landlock" in mechanism:
        abi = landlock_abi()
        if abi < 1:
            raise SandboxError("Landlock is not available in this kernel")
        _landlock(policy, abi, info)
    else:
        info.gaps.append("files: no Landlock; only the bwrap mount view, if any")
    _seccomp(policy, info)
    return info


SANDBOX_FAILED = 71  # exit code: the sandbox could not be applied; no plugin code ran


def confine_or_exit(sandbox: dict, keep_fds: tuple[int, ...] = ()) -> None:
    """Confine this process as the runner asked (`{"policy", "mechanism"}`), or exit
    with `SANDBOX_FAILED` before any plugin code can run."""
    try:
        confine(Policy.from_dict(sandbox["policy"]), sandbox["mechanism"], keep_fds=keep_fds)
    except (SandboxError, OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"mu-bench: the sandbox could not be applied: {exc}\n")
        sys.stderr.flush()
        os._exit(SANDBOX_FAILED)


# --- the parent's side ------------------------------------------------------------------
def bwrap_command(
    argv: Sequence[str], policy: Policy, *, write_roots: Iterable[str] = ()
) -> list[str]:
    """`argv` under bubblewrap: new user, PID, network, IPC and UTS namespaces, a fresh
    /proc (only the sandbox's processes), a minimal /dev, a private /tmp, the policy's
    read paths and inputs bound read-only, its writes (and `write_roots`, e.g. the work
    root a fork server will create seed folders in) bound read-write, its devices bound
    as devices. The process dies with its parent. The environment passes through."""
    path = bwrap_path()
    if path is None:
        raise SandboxError("bubblewrap is not available")
    cmd = [path, "--unshare-all", "--die-with-parent", "--new-session"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    binds: dict[str, str] = {}  # path -> flag; the first flag given for a path wins
    skip = ("/proc/", "/dev/")  # served by --proc and --dev
    for flag, paths in (
        ("--bind", (*write_roots, *policy.write)),
        ("--ro-bind-try", (p for p in policy.read if not p.startswith(skip))),
        ("--ro-bind", policy.inputs),
        ("--dev-bind", policy.devices),
    ):
        for p in paths:
            binds.setdefault(os.path.normpath(p), flag)
    # Parents before children, whatever their flags: a later bind over a folder hides
    # the mounts beneath it (a read-only import root above a writable job root would
    # make the job root read-only). Reads may be unreachable for this user (a venv's
    # base interpreter under /root): those are skipped; writes and inputs must exist.
    for target in sorted(binds, key=lambda p: p.count(os.sep)):
        if not os.path.lexists(target):
            continue
        if os.path.islink(target):  # /lib -> usr/lib: recreate the link, bind its target
            cmd.extend(["--symlink", os.readlink(target), target])
        else:
            cmd.extend([binds[target], target, target])
    return [*cmd, "--", *argv]


def host_pid(root: int, ns_pid: int) -> int | None:
    """The host pid of `ns_pid`, a process in the PID namespace of bwrap process `root`
    (a host pid): the fork server reports its children's pids as it sees them."""
    import psutil

    try:
        descendants = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return None
    for proc in descendants:
        if innermost_pid(proc.pid) == ns_pid:
            return proc.pid
    return None


def innermost_pid(pid: int) -> int | None:
    """Host process `pid`'s pid in its innermost PID namespace (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return None


_MEMORY = re.compile(
    r"MemoryError|can't allocate memory|Cannot allocate memory|std::bad_alloc|"
    r"out of memory|ENOMEM|failed to map segment",
    re.IGNORECASE,
)
_FILE = re.compile(r"File too large|EFBIG|\[Errno 27\]")
_PROCESS = re.compile(r"Resource temporarily unavailable|\[Errno 11\]|EAGAIN")


def classify(
    code: int | None, evidence: str, policy: Policy, *, log_over: bool = False
) -> str | None:
    """The limit a failed worker ran into, as a reason (`memory limit 4 GiB`), or None.

    `code`: the worker's exit status (negative: killed by that signal). `evidence`: its
    error message, traceback and stderr tail. The signal is the kernel's word (SIGXFSZ:
    a file reached the size cap; SIGSYS: seccomp killed a process start); the text is
    only used to name a limit for a worker that already failed, so a worker can at worst
    mislabel its own failure. `log_over` is the parent's own measurement of the logs."""
    if log_over:
        return f"log limit {size_text(policy.log_bytes)}"
    if code is not None and code < 0:
        if -code == signal.SIGXFSZ and policy.file_bytes:
            return f"file size limit {size_text(policy.file_bytes)}"
        if -code == signal.SIGSYS:
            return f"process limit {policy.max_processes} (the worker tried to start a process)"
    if policy.memory_bytes and _MEMORY.search(evidence):
        return f"memory limit {size_text(policy.memory_bytes)}"
    if policy.file_bytes and _FILE.search(evidence):
        return f"file size limit {size_text(policy.file_bytes)}"
    if policy.max_processes > 1 and _PROCESS.search(evidence):
        return f"process limit {policy.max_processes}"
    return None


def log_breach(paths: Iterable[str | Path], policy: Policy) -> bool:
    """True when a log file has grown past the cap (the parent polls this)."""
    for path in paths:
        try:
            if os.stat(path).st_size > policy.log_bytes:
                return True
        except OSError:
            continue
    return False


def cap_log(path: str | Path, limit: int) -> bool:
    """Cut a log back to `limit` bytes and end it with the truncation marker; True when it
    was cut. Opened without following links: the worker owned the folder."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_size <= limit:
            return False
        os.ftruncate(fd, limit)
        os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, TRUNCATION_MARKER.format(size=size_text(limit)).encode())
        return True
    finally:
        os.close(fd)


def with_limits(policy: Policy, **changes) -> Policy:
    """A copy of `policy` with other limits (`memory_bytes=...`)."""
    return replace(policy, **changes)
