"""A team's MLflow tracking server, optionally on a private PostgreSQL: `mu-bench server`.

`plan(...)` validates everything first (bad input raises UsageError and writes nothing);
`serve(plan)` then starts, in this order, a private PostgreSQL in a scratch folder (with
`--postgres-dir`), the MLflow server on it, waits for `/health`, reports the tracking URI
that `submit --tracking-uri` takes, and stops both on Ctrl-C or SIGTERM.

Light by default: one server worker, MLflow's job execution (a huey consumer per server)
off, telemetry off. Measured on a busy 2-core machine (`benchmarks/services_startup.py`,
medians): the server answers 17 s after start (22 s on a fresh store, whose schema it
creates), on SQLite and PostgreSQL alike, and holds 0.5 GB resident, against 63 s and
2.0-2.3 GB with MLflow's defaults (four workers, job execution on); a fresh PostgreSQL
folder is initialised and serving in 3.5 s, an initialised one restarts in 0.3 s.

The private PostgreSQL binds 127.0.0.1 only, has no Unix socket, and one role (`mubench`,
password authentication with a random password kept in `DIR/password`, mode 0600).
PostgreSQL refuses to run as root, so under root every PostgreSQL program runs as the
`postgres` user (`runuser`), which owns `DIR`. The database URI (with its password) goes
to the MLflow server through its environment, never on a command line that `ps` shows.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import ipaddress
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from mu_bench.errors import MuBenchError, UsageError
from mu_bench.paths import home

PG_USER = "mubench"
PG_DATABASE = "mlflow"
PG_OS_USER = "postgres"  # who runs PostgreSQL when we are root
BACKEND_FORMS = (
    "sqlite:///PATH.db, postgresql+psycopg://USER[:PASSWORD]@HOST:PORT/DB (postgresql:// is the "
    "same with SQLAlchemy 2.1; postgresql+psycopg2:// needs psycopg2), mysql://..., mssql://..., "
    "or --postgres-dir DIR for a private PostgreSQL"
)
# The environment every server we start gets: light and silent.
LIGHT_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


class ServerError(MuBenchError):
    """A service failed to start or stopped by itself (its log's tail says why). Exit 1."""

    exit_code = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (another process may take it before we bind it)."""
    with socket.socket(_family(host)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server bound to `host`."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _is_root() -> bool:
    return os.geteuid() == 0


# --------------------------------------------------------------------------- PostgreSQL


def postgres_bin() -> Path:
    """The folder of initdb/pg_ctl: the newest /usr/lib/postgresql/*/bin, else PATH."""

    def major(path: str) -> int:
        m = re.search(r"/postgresql/(\d+)/", path)
        return int(m.group(1)) if m else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)
    if found:
        return Path(found[-1]).parent
    import shutil

    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise UsageError(
        "--postgres-dir needs PostgreSQL, which is not installed (no initdb under "
        "/usr/lib/postgresql/*/bin or on PATH): install it with `apt-get install -y postgresql`"
        ", or give --backend-store-uri for a database that runs elsewhere"
    )


def _as_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: under root, run `cmd` as the postgres user."""
    return ["runuser", "-u", PG_OS_USER, "--", *cmd] if _is_root() else cmd


def _owner_can_reach(folder: Path) -> bool:
    """Whether the PostgreSQL user can enter `folder` (every parent searchable)."""
    if not _is_root():
        return os.access(folder, os.X_OK)
    probe = subprocess.run(_as_owner(["test", "-x", str(folder)]), capture_output=True)
    return probe.returncode == 0


def check_postgres_dir(folder: Path) -> None:
    """Raise UsageError, writing nothing, unless `folder` can hold a private PostgreSQL:
    new, empty, or one that `start_postgres` initialised before (then it is reused)."""
    postgres_bin()
    if _is_root():
        import pwd

        try:
            pwd.getpwnam(PG_OS_USER)
        except KeyError:
            raise UsageError(
                f"--postgres-dir: running as root, PostgreSQL must run as the '{PG_OS_USER}' "
                "user, which does not exist (the Debian package `postgresql` creates it)"
            ) from None
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--postgres-dir {folder}: this is a file; give a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / "data" / "PG_VERSION").exists() or not (folder / "password").exists():
            raise UsageError(
                f"--postgres-dir {folder}: the folder is not empty and holds no PostgreSQL that "
                "mu-bench initialised (data/PG_VERSION and password); give a new or empty folder"
            )
        pid = _postmaster_pid(folder / "data")
        if pid is not None:
            raise UsageError(
                f"--postgres-dir {folder}: a PostgreSQL server already runs there (pid {pid}); "
                "stop it first or give another folder"
            )
        return
    # `folder` itself will be ours (chowned to postgres under root); its parent must let
    # PostgreSQL through.
    parent = folder.parent
    if not parent.is_dir():
        raise UsageError(f"--postgres-dir {folder}: folder {parent} does not exist")
    writable = folder if folder.is_dir() else parent
    if not os.access(writable, os.W_OK):
        raise UsageError(f"--postgres-dir {folder}: folder {writable} is not writable")
    if not _owner_can_reach(parent):
        raise UsageError(
            f"--postgres-dir {folder}: PostgreSQL runs as the '{PG_OS_USER}' user, who cannot "
            f"enter {parent}; give a folder that user can reach (e.g. under /tmp or /srv)"
        )


def _postmaster_pid(data: Path) -> int | None:
    """The pid of the PostgreSQL server running in `data`, if any."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    import psutil

    return pid if psutil.pid_exists(pid) else None


@dataclass
class Postgres:
    """A private PostgreSQL started by `start_postgres`; `stop()` ends it."""

    folder: Path
    port: int
    pid: int
    bin: Path
    host: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    @property
    def password(self) -> str:
        return (self.folder / "password").read_text().strip()

    @property
    def uri(self) -> str:
        """Without the password: safe to print and log."""
        return f"postgresql+psycopg://{PG_USER}@{self.host}:{self.port}/{PG_DATABASE}"

    @property
    def uri_with_password(self) -> str:
        # token_urlsafe's alphabet needs no escaping in a URI
        return (
            f"postgresql+psycopg://{PG_USER}:{self.password}@{self.host}:{self.port}/{PG_DATABASE}"
        )

    def running(self) -> bool:
        return _postmaster_pid(self.data) == self.pid

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (rolls back open transactions); SIGKILL if that hangs."""
        if not self.running():
            return
        cmd = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w"]
        cmd += ["-t", str(int(timeout)), "stop"]
        done = subprocess.run(_as_owner(cmd), cwd=self.folder, capture_output=True, text=True)
        if done.returncode != 0 and self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def start_postgres(folder: Path, port: int | None = None, *, sync: bool = True) -> Postgres:
    """Initialise (first time only) and start a private PostgreSQL in `folder` on
    127.0.0.1:`port` (a free one by default), with the database `mlflow` in it.

    `sync=False` skips initdb's fsync (scratch folders in tests: about 1 s faster)."""
    folder = Path(folder).absolute()
    check_postgres_dir(folder)
    pg_bin = postgres_bin()
    folder.mkdir(exist_ok=True)
    folder.chmod(0o700)
    if _is_root():
        import shutil

        shutil.chown(folder, PG_OS_USER, PG_OS_USER)
    data = folder / "data"
    if not (data / "PG_VERSION").exists():
        password = folder / "password"
        fd = os.open(password, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
        if _is_root():
            import shutil

            shutil.chown(password, PG_OS_USER, PG_OS_USER)
        cmd = [str(pg_bin / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={password}"]
        cmd += ["--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--locale=C"]
        cmd += [] if sync else ["--no-sync"]
        done = subprocess.run(_as_owner(cmd), cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise ServerError(f"initdb failed in {data}:\n{done.stdout}\n{done.stderr}")
    port = port or free_port()
    # No Unix socket: clients (MLflow, psql) come over TCP on 127.0.0.1 with the password.
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    log = folder / "postgres.log"
    cmd = [str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60"]
    cmd += ["-o", options, "start"]
    done = subprocess.run(_as_owner(cmd), cwd=folder, capture_output=True, text=True)
    pid = _postmaster_pid(data)
    if done.returncode != 0 or pid is None:
        raise ServerError(
            f"PostgreSQL did not start in {data} on port {port}:\n{done.stderr}\n{_tail(log)}"
        )
    pg = Postgres(folder, port, pid, pg_bin)
    try:
        _ensure_database(pg)
    except BaseException:
        pg.stop()
        raise
    return pg


def _ensure_database(pg: Postgres) -> None:
    env = dict(os.environ, PGPASSWORD=pg.password, PGCONNECT_TIMEOUT="10")
    base = ["-h", pg.host, "-p", str(pg.port), "-U", PG_USER]
    query = f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"
    found = subprocess.run(
        [str(pg.bin / "psql"), "-X", *base, "-d", "postgres", "-tAc", query],
        env=env,
        capture_output=True,
        text=True,
        cwd=pg.folder,
    )
    if found.returncode != 0:
        raise ServerError(f"PostgreSQL on port {pg.port} does not answer: {found.stderr}")
    if found.stdout.strip() == "1":
        return
    made = subprocess.run(
        [str(pg.bin / "createdb"), *base, PG_DATABASE],
        env=env,
        capture_output=True,
        text=True,
        cwd=pg.folder,
    )
    if made.returncode != 0:
        raise ServerError(f"createdb {PG_DATABASE} failed: {made.stderr}")


# --------------------------------------------------------------------------- MLflow server


@dataclass
class MlflowServer:
    """An `mlflow server` process (and its uvicorn workers) in a session of its own."""

    url: str
    proc: subprocess.Popen
    backend: str  # printable: no password
    artifacts: str
    log: Path | None = None

    def pids(self) -> list[int]:
        """The server's process and its descendants, now."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return [root.pid, *(p.pid for p in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the server's process group, SIGKILL after `timeout` seconds."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 120) -> float:
    """Poll `url`/health until it answers 200; returns the seconds it took. Raises
    ServerError if the process exits or `seconds` pass."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if proc.poll() is not None:
            raise ServerError(f"the server at {url} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.2)
    raise ServerError(f"the server at {url} did not answer within {seconds:.0f} s")


def start_mlflow(
    backend_uri: str,
    artifacts: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int = 1,
    allowed_hosts: str | None = None,
    log: Path | None = None,
    seconds: float = 120,
    printable_backend: str | None = None,
    env: dict[str, str] | None = None,
) -> MlflowServer:
    """Start `mlflow server` on `backend_uri` with `artifacts` as the artifact root and
    wait until it answers. Output goes to `log` (a file), else to this process's stderr.
    The backend URI travels in the environment (it may hold a password); `env` overrides
    the light settings (a benchmark compares MLflow's defaults)."""
    port = port or free_port(host)
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env.update(LIGHT_ENV, MLFLOW_BACKEND_STORE_URI=backend_uri)
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port)]
    cmd += ["--workers", str(workers), "--artifacts-destination", artifacts]
    if allowed_hosts:
        cmd += ["--allowed-hosts", allowed_hosts]
    sink = open(log, "ab") if log else None  # noqa: SIM115 (the child keeps it)
    try:
        proc = subprocess.Popen(
            cmd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=sink or sys.stderr,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: one signal stops it and its workers
        )
    finally:
        if sink:
            sink.close()
    url = client_url(host, port)
    server = MlflowServer(url, proc, printable_backend or backend_uri, artifacts, log)
    try:
        wait_healthy(url, proc, seconds)
    except BaseException as exc:
        server.stop()
        if isinstance(exc, ServerError) and log:
            raise ServerError(f"{exc}; its log ends:\n{_tail(log)}") from None
        raise
    return server


# --------------------------------------------------------------------------- `mu-bench server`


@dataclass(frozen=True)
class ServerPlan:
    """A validated `mu-bench server` request."""

    host: str
    port: int
    workers: int
    artifacts: str  # a local absolute path or a URI
    backend: str | None = None  # None with postgres_dir
    postgres_dir: Path | None = None
    allowed_hosts: str | None = None
    create: tuple[Path, ...] = field(default=())  # local folders to create at start


def _nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _check_local_folder(option: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: this is a file; give a folder")
    base = _nearest_existing(path)
    if not base.is_dir() or not os.access(base, os.W_OK):
        raise UsageError(f"{option} {path}: folder {base} is not writable")


def _check_backend(uri: str) -> None:
    """Valid forms only; a database URI must answer now (driver installed, reachable)."""
    scheme = urlparse(uri).scheme
    if scheme == "sqlite":
        if not uri.startswith("sqlite:///") or uri == "sqlite:///":
            raise UsageError(f"--backend-store-uri {uri}: give sqlite:///PATH.db")
        from mu_bench.leaderboard import store

        store.check_uri(uri)
        return
    if scheme.split("+")[0] not in ("postgresql", "mysql", "mssql"):
        raise UsageError(f"--backend-store-uri {uri} is not valid. Valid forms: {BACKEND_FORMS}")
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    args = {"connect_timeout": 5} if scheme.split("+")[0] in ("postgresql", "mysql") else {}
    shown = _hide_password(uri)
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=args)
    except (NoSuchModuleError, ModuleNotFoundError, ArgumentError) as exc:
        raise UsageError(
            f"--backend-store-uri {shown}: its database driver is not installed ({exc}); "
            "mu-bench installs psycopg 3, which postgresql+psycopg:// names"
        ) from None
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise UsageError(f"--backend-store-uri {shown}: cannot connect: {reason}") from None
    finally:
        engine.dispose()


def _hide_password(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    return uri.replace(f":{parsed.password}@", ":***@", 1)


def _check_bind(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UsageError(
            f"--host {host}: not a known address; give an address of this machine "
            "(127.0.0.1, the default; 0.0.0.0 for every interface)"
        ) from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"--port {port}: already in use on {host}; give a free port"
                ) from None
            raise UsageError(
                f"--host {host}: cannot listen there ({exc.strerror}); give an address of this "
                "machine (127.0.0.1, the default; 0.0.0.0 for every interface)"
            ) from None


def plan(
    *,
    backend_store_uri: str | None = None,
    postgres_dir: str | None = None,
    artifacts_destination: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    allowed_hosts: str | None = None,
) -> ServerPlan:
    """Validate a `mu-bench server` request; raises UsageError naming what is valid, and
    writes nothing. Defaults: SQLite at $MU_BENCH_HOME/server/mlflow.db; artifacts beside
    the store (DIR/artifacts with --postgres-dir)."""
    if backend_store_uri and postgres_dir:
        raise UsageError(
            "give either --backend-store-uri (a database that runs elsewhere) or --postgres-dir "
            "(a private PostgreSQL in that folder), not both"
        )
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port}: give a port from 1 to 65535")
    if workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1")
    _check_bind(host, port)
    create: list[Path] = []
    pg_dir = None
    if postgres_dir:
        pg_dir = Path(postgres_dir).expanduser().absolute()
        check_postgres_dir(pg_dir)
        default_artifacts = pg_dir / "artifacts"
        backend = None
    else:
        if backend_store_uri is None:
            db = home() / "server" / "mlflow.db"
            _check_local_folder("MU_BENCH_HOME", db.parent)
            create.append(db.parent)
            backend = f"sqlite:///{db}"
        else:
            _check_backend(backend_store_uri)
            backend = backend_store_uri
        if backend.startswith("sqlite:///"):
            default_artifacts = Path(backend[len("sqlite:///") :]).absolute().parent / "artifacts"
        else:
            default_artifacts = home() / "server" / "artifacts"
    if artifacts_destination is None or "://" not in artifacts_destination:
        if artifacts_destination is None:
            path = default_artifacts
        else:
            path = Path(artifacts_destination).expanduser().absolute()
        _check_local_folder("--artifacts-destination", path)
        create.append(path)
        artifacts = str(path)
    else:
        artifacts = artifacts_destination
    return ServerPlan(host, port, workers, artifacts, backend, pg_dir, allowed_hosts, tuple(create))


def serve(
    p: ServerPlan,
    on_ready: Callable[[dict], None],
    say: Callable[[str], None] = lambda message: None,
) -> None:
    """Start what `p` asks for, call `on_ready` with the tracking URI and what serves it,
    and run until SIGINT or SIGTERM; then stop the server and PostgreSQL. Raises
    ServerError if either fails to start or the server stops by itself."""
    pg: Postgres | None = None
    server: MlflowServer | None = None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if p.postgres_dir is not None:
            say(f"starting PostgreSQL in {p.postgres_dir}")
            pg = start_postgres(p.postgres_dir)
            backend, shown = pg.uri_with_password, pg.uri
        else:
            assert p.backend is not None
            backend, shown = p.backend, _hide_password(p.backend)
        for folder in p.create:
            folder.mkdir(parents=True, exist_ok=True)
        if not _is_loopback(p.host):
            say(
                f"serving on {p.host}: the MLflow server has no authentication; whoever reaches "
                f"this address can read and write the board (other machines use "
                f"http://{socket.getfqdn()}:{p.port} or this machine's address)"
            )
        say(f"starting the MLflow server on {shown} (artifacts: {p.artifacts})")
        server = start_mlflow(
            backend,
            p.artifacts,
            host=p.host,
            port=p.port,
            workers=p.workers,
            allowed_hosts=p.allowed_hosts,
            printable_backend=shown,
        )
        on_ready(
            {
                "tracking_uri": server.url,
                "backend_store_uri": shown,
                "artifacts_destination": p.artifacts,
                "postgres_dir": str(p.postgres_dir) if p.postgres_dir else None,
                "pid": os.getpid(),
            }
        )
        say(f"`mu-bench submit METHOD --tracking-uri {server.url}`; Ctrl-C stops the server")
        code = server.proc.wait()
        raise ServerError(f"the MLflow server stopped by itself (exit code {code})")
    except KeyboardInterrupt:
        say("stopping")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server is not None:
            server.stop()
        if pg is not None:
            pg.stop()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
