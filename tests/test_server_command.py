"""`mu-bench server`: bad input exits 2 naming what is valid, and writes nothing."""

from __future__ import annotations

import re
import socket

import pytest

from mu_bench.errors import UsageError
from mu_bench.leaderboard import server
from mu_bench.leaderboard.server import client_url, free_port

from .conftest import cli


@pytest.fixture
def busy_port():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    yield taken.getsockname()[1]
    taken.close()


def test_bad_input_is_refused_naming_what_is_valid_and_writes_nothing(home, tmp_path, busy_port):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    closed = free_port()  # nothing listens there
    cases = [
        ({"backend_store_uri": "sqlite:///x.db", "postgres_dir": "pg"}, "not both"),
        ({"backend_store_uri": "http://127.0.0.1:5000"}, "Valid forms"),
        ({"backend_store_uri": "sqlite:////no/such/dir/x.db"}, "does not exist"),
        ({"backend_store_uri": f"postgresql+psycopg://u:pw@127.0.0.1:{closed}/db"}, "connect"),
        ({"backend_store_uri": "postgresql+nodriver://u@127.0.0.1/db"}, "driver"),
        ({"postgres_dir": str(not_a_dir)}, "this is a file"),
        ({"postgres_dir": str(full)}, "not empty"),
        ({"postgres_dir": "/no/such/parent/pg"}, "does not exist"),
        ({"artifacts_destination": str(not_a_dir)}, "this is a file"),
        ({"port": busy_port}, "already in use"),
        ({"port": 70000}, "from 1 to 65535"),
        ({"workers": 0}, "at least 1"),
        ({"host": "203.0.113.7"}, "give an address of this machine"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(UsageError, match=re.escape(fragment)) as caught:
            server.plan(**kwargs)
        assert ":pw@" not in str(caught.value)  # a password is never shown
        assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "full"], kwargs
        assert [p.name for p in full.iterdir()] == ["notes.txt"]


def test_the_command_exits_2_on_bad_input(home, busy_port):
    for args, fragment in [
        (["--backend-store-uri", "sqlite:///x.db", "--postgres-dir", "pg"], "not both"),
        (["--port", str(busy_port)], "already in use"),
        (["--port", "70000"], "less than or equal to 65535"),
    ]:
        proc = cli("server", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert fragment in proc.stderr and "Traceback" not in proc.stderr
        assert not home.exists()


@pytest.mark.parametrize(
    "host, url",
    [
        ("127.0.0.1", "http://127.0.0.1:5000"),
        ("0.0.0.0", "http://127.0.0.1:5000"),
        ("::1", "http://[::1]:5000"),
        ("::", "http://[::1]:5000"),
        ("board.example", "http://board.example:5000"),
    ],
)
def test_the_printed_uri_reaches_the_server_from_this_machine(host, url):
    assert client_url(host, 5000) == url
