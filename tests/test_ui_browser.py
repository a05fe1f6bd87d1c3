"""The MLflow UI as the leaderboard, in a real browser: `mu-bench ui` over a store of
hand-made submissions, the link it prints opened in headless Chromium (Debian's
`chromium`, which `make test-slow` installs). The page must show the submissions, in
the board's order, with the ranking metric and the headline metrics as columns; the
server must read the store's relative artifact locations. Slow: the UI takes 15-50 s to
answer on two busy cores, and Chromium renders the page in about 20 s of virtual time.

`MU_BENCH_SCREENSHOTS=DIR` also saves the table and the charts as PNGs in DIR."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mu_bench.leaderboard import ranking, store
from mu_bench.leaderboard.server import free_port

from .test_board import REPORTS, SCENARIO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (make test-slow installs it)"),
]


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",  # the page's scripts run to completion
            "--window-size=1600,900",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A store of REPORTS and `mu-bench ui` on it; yields (uri, {scenario: link})."""
    folder = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    for report in REPORTS:
        store.record(report, uri)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mu_bench", "ui", "--tracking-uri", uri, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    links: dict[str, str] = {}
    deadline = time.monotonic() + 240
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline and len(links) < 2:
            line = proc.stdout.readline()
            if not line:
                break
            found = re.match(r"\s+(\S+?)(?: \(charts\))?: (http\S+)", line)
            if found:
                key = found.group(1) + (" charts" if "(charts)" in line else "")
                links[key] = found.group(2)
        assert SCENARIO in links, f"no link printed; exit code {proc.poll()}"
        yield uri, links
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def test_the_printed_link_opens_the_ranked_board(ui, tmp_path):
    uri, links = ui
    link = links[SCENARIO]
    assert "/runs?" in link and "viewStateShareKey=" in link
    page = chromium(link, tmp_path / "profile", "--dump-dom")
    assert page.returncode == 0, page.stderr[-2000:]
    dom = page.stdout
    # every submission's run name is on the page, in the terminal board's order
    c = store.client(uri)
    order = [c.get_run(run).info.run_name for run in _ranked_ids(uri)]
    assert len(order) == len(REPORTS)
    positions = [dom.find(html(name)) for name in order]
    assert all(p >= 0 for p in positions), list(zip(order, positions, strict=True))
    assert positions == sorted(positions), order
    # the ranking metric and the headline metrics are visible columns
    for column in ("1_headline/score_norm", "1_headline/forget_quality", "2_accuracy/forget_acc"):
        assert column in dom, column
    assert "Overview" not in re.sub(r"<[^>]+>", " ", dom).split("Runs")[0]  # not GenAI's page
    # the seed runs and the reference runs are filtered out
    assert "seed 0" not in dom and "reference ·" not in dom
    shots = os.environ.get("MU_BENCH_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        for name, url in (("board", link), ("charts", links[f"{SCENARIO} charts"])):
            shot = chromium(url, tmp_path / "profile", f"--screenshot={Path(shots) / name}.png")
            assert shot.returncode == 0, shot.stderr[-2000:]


def test_the_ui_server_reads_relative_artifact_locations(ui):
    uri, links = ui
    base = links[SCENARIO].split("/#/")[0]
    run_id = _ranked_ids(uri)[0]
    url = f"{base}/get-artifact?path=report.json&run_uuid={run_id}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200 and run_id.encode() in resp.read()


def _ranked_ids(uri: str) -> list[str]:
    return list(ranking.table(ranking.load(uri, SCENARIO))["run_id"])


def html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
