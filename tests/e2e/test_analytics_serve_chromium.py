"""``hpcnas-analytics serve`` against a search that is still running, loaded in headless Chromium.

The search's run function waits on a gate (:mod:`tests.support.gated_run`), so the test decides
how many evaluations have finished when the page is loaded, and knows the search is in progress.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.support.chromium import dump_dom
from tests.support.gated_run import ENV as GATE_ENV
from tests.support.gated_run import allow

pytestmark = [pytest.mark.e2e, pytest.mark.chromium]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT, HPCNAS_DEBUG="")
MAX_EVALS = 12


def _rows(path) -> int:
    if not os.path.exists(path):
        return 0
    with open(path, newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def _wait(condition, what: str, limit: float = 60.0, procs=()) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return
        for p in procs:
            assert p.poll() is None, f"{p.args[3:5]} ended early: {p.communicate()}"
        time.sleep(0.05)
    pytest.fail(f"{what} after {limit} s")


def _page(url: str) -> dict:
    dom = dump_dom(url, budget_ms=3000)
    finished = re.search(r'id="finished" data-finished="(\d+)" data-failed="(\d+)"', dom)
    images = re.search(r'id="images-loaded"[^>]*data-loaded="(-?\d+)"[^>]*data-total="(\d+)"', dom)
    assert finished and images, dom[:3000]
    table = re.search(r'<table[^>]*id="best".*?<tbody>(.*?)</tbody>', dom, re.S)
    return {"dom": dom, "finished": int(finished.group(1)), "failed": int(finished.group(2)),
            "images": (int(images.group(1)), int(images.group(2))),
            "best_rows": table.group(1).count("<tr") if table else 0}


@pytest.fixture
def running_search(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    allow(str(gate), 3)
    out = tmp_path / "out"
    search = subprocess.Popen(
        [sys.executable, "-m", "hpcnas.cli.main", "hps", "random", "--problem", "tests.support.toy.Problem",
         "--run", "tests.support.gated_run.run", "--max-evals", str(MAX_EVALS), "--num-workers", "2",
         "--output-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(ENV, **{GATE_ENV: str(gate)}),
        cwd=tmp_path)
    try:
        yield search, out, str(gate)
    finally:
        allow(str(gate), 10**6)
        try:
            search.wait(timeout=60)
        except subprocess.TimeoutExpired:
            search.kill()
            search.wait()


@pytest.fixture
def server(running_search, tmp_path):
    search, out, gate = running_search
    _wait(lambda: (out / "search.lock").exists(), "no search.lock", procs=[search])  # the master started
    serve = subprocess.Popen(
        [sys.executable, "-m", "hpcnas.analytics.cli", "serve", str(out), "--port", "0", "--interval", "0.5",
         "-o", str(tmp_path / "live")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        url = serve.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), (url, serve.stderr.read() if serve.poll() is not None else "")
        yield serve, url
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def test_live_page_follows_a_running_search(running_search, server):
    search, out, gate = running_search
    serve, url = server
    results = out / "results.csv"
    _wait(lambda: _rows(results) == 3, "3 rows in results.csv", procs=[search])

    first = _page(url)
    assert search.poll() is None and (out / "search.lock").exists()  # the search is still running
    assert first["finished"] == 3 and first["failed"] == 0 and first["best_rows"] == 3
    assert first["images"] == (2, 2)  # search curve and utilization, both loaded
    assert "search running (pid %d" % search.pid in first["dom"]

    allow(gate, 8)
    _wait(lambda: _rows(results) == 8, "8 rows in results.csv", procs=[search])
    second = _page(url)
    assert search.poll() is None
    assert second["finished"] == 8 and second["best_rows"] == 8 and second["images"] == (2, 2)

    allow(gate, 10**6)  # the server holds no lock: the search runs to its end while it serves
    assert search.wait(timeout=60) == 0, search.communicate()
    assert _rows(results) == MAX_EVALS
    _wait(lambda: json.loads(urllib.request.urlopen(url + "state.json", timeout=30).read())["finished"]
          == MAX_EVALS, "the state never showed every evaluation", procs=[serve])
    third = json.loads(urllib.request.urlopen(url + "state.json", timeout=30).read())["html"]
    assert "no search holds this directory now" in third and third.count("<tr") == 1 + 10

    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=30) == 0
    assert "Traceback" not in serve.stderr.read()


def test_page_script_swaps_in_the_new_state(tmp_path):
    """The page's script fetches state.json and replaces the content when the version moved."""
    from hpcnas.analytics.live import LiveState, Snapshot
    from hpcnas.analytics.serve import LiveServer

    class TwoStates(LiveState):
        calls = 0

        def current(self) -> Snapshot:
            TwoStates.calls += 1
            n = 1 if TwoStates.calls == 1 else 2
            return Snapshot(n, f'<p id="finished" data-finished="{n}" data-failed="0">{n} finished</p>')

    state = TwoStates(lambda: None, None, out=str(tmp_path), label="stub", interval=0.2)
    httpd = LiveServer(state, 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        dom = dump_dom(httpd.url, budget_ms=3000)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert TwoStates.calls >= 2  # the page, then state.json
    assert 'data-finished="2"' in dom and 'data-finished="1"' not in dom
    assert re.search(r'<body data-version="2"', dom)
