"""Running test commands as an unprivileged user (`mubench-sbx`), created when the tests
run as root and it does not exist yet (CI starts as root on a clean machine).

The venv's interpreter may live where that user cannot go (pyenv under /root); then the
system Python of the same version runs instead, with a `sitecustomize` that adds our
site-packages (and so the editable install's finder). Everything the user runs must be
readable by it: `interpreter_for` checks by importing mu-bench and finding torch as that
user, and returns None (the caller skips) when it cannot.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

USER = "mubench-sbx"


def ensure_user() -> int | None:
    """The uid of the unprivileged test user (created when running as root), or None."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return None
    try:
        return pwd.getpwnam(USER).pw_uid
    except KeyError:
        pass
    made = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
        capture_output=True,
    )
    try:  # made here, or by a parallel test process at the same moment
        return pwd.getpwnam(USER).pw_uid
    except KeyError:
        return None if made.returncode != 0 else pwd.getpwnam(USER).pw_uid


def _site_shim() -> str:
    """A folder whose sitecustomize adds our site-packages as a site dir (so its .pth
    files, the editable install's among them, take effect in another interpreter)."""
    shim = Path(tempfile.mkdtemp(prefix="mu-bench-sbx-site-"))
    os.chmod(shim, 0o755)
    sites = [p for p in sys.path if p.endswith("site-packages")]
    (shim / "sitecustomize.py").write_text(
        "import site\n" + "".join(f"site.addsitedir({p!r})\n" for p in sites)
    )
    os.chmod(shim / "sitecustomize.py", 0o644)
    atexit.register(shutil.rmtree, shim, True)
    return str(shim)


def interpreter_for(user: str | None) -> tuple[list[str], dict[str, str]] | None:
    """A command prefix and environment that run this venv's Python as `user` (None:
    as we are), or None when that user cannot run it with mu-bench and torch."""
    env = dict(os.environ)
    if user is None:
        return [sys.executable], env
    prefix = ["runuser", "-u", user, "--"]
    probe = "import importlib.util as u, mu_bench.isolation.sandbox; assert u.find_spec('torch')"
    candidates: list[tuple[list[str], dict[str, str]]] = [([sys.executable], {})]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/bin:/usr/local/bin")
    if system:
        shim = _site_shim()
        pythonpath = os.pathsep.join(p for p in (shim, env.get("PYTHONPATH", "")) if p)
        candidates.append(([system], {"PYTHONPATH": pythonpath}))
    for argv, extra in candidates:
        run_env = {**env, **extra}
        ok = subprocess.run(
            [*prefix, *argv, "-c", probe], env=run_env, capture_output=True, cwd="/"
        )
        if ok.returncode == 0:
            return [*prefix, *argv], run_env
    return None


def give(path: Path, uid: int) -> None:
    """Hand `path` (a folder tree) to `uid`."""
    for folder, _dirs, files in os.walk(path):
        os.chown(folder, uid, uid)
        for name in files:
            os.chown(Path(folder) / name, uid, uid)
