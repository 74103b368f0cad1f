"""``hpcnas-analytics serve`` without a browser: what the live state shows as results.csv grows."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest

from hpcnas.analytics.cli import build_parser, main
from hpcnas.analytics.serve import LiveServer, state_from_args
from hpcnas.evaluator.base import DONE, FAILED, EvalResult

T0 = 1_700_000_000.0


def rows(n: int, first: int = 0) -> pd.DataFrame:
    return pd.DataFrame([EvalResult(
        job_id=f"j{i}", config={"x": float(i), "opt": "adam"}, objective=None if i % 4 == 3 else float(i),
        status=FAILED if i % 4 == 3 else DONE, submit_time=T0 + i, start_time=T0 + i, end_time=T0 + i + 0.5,
        worker=f"w{i % 2}").to_row() for i in range(first, first + n)])


def state_for(out, *extra: str):
    args = build_parser().parse_args(["serve", str(out), "--interval", "0.05", *extra])
    return state_from_args(args, str(out / "_live"))


def until(state, predicate, limit: float = 30.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        snap = state.current()
        if predicate(snap):
            return snap
        time.sleep(0.02)
    pytest.fail(f"the state never matched; last: {snap.html[:500]}")


def test_state_follows_a_growing_results_csv(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    state = state_for(out)
    first = state.current()
    assert first.finished == 0 and "no results.csv yet" in first.html

    rows(3).to_csv(out / "results.csv", index=False)
    snap = until(state, lambda s: s.finished == 3)
    assert 'data-finished="3" data-failed="0"' in snap.html and "best objective <b>2</b>" in snap.html
    assert snap.html.count("<tr") == 1 + 3  # header and the 3 best
    assert set(snap.images) == {"search.png", "utilization.png"}
    assert all(png[:4] == b"\x89PNG" for png in snap.images.values())
    assert "no search holds this directory now" in snap.html

    # a row being appended (no line end yet) is left for the next reading
    text = rows(2, first=3).to_csv(index=False, header=False)
    with open(out / "results.csv", "a", newline="") as fh:
        fh.write(text + text.splitlines()[0][:12])
    snap = until(state, lambda s: s.version > first.version + 1)
    assert snap.finished == 5 and 'data-failed="1"' in snap.html and "note" not in snap.html


def test_an_unreadable_edit_keeps_the_last_state_with_a_note(tmp_path):
    rows(4).to_csv(tmp_path / "results.csv", index=False)
    state = state_for(tmp_path)
    assert state.current().finished == 4
    with open(tmp_path / "results.csv", "a") as fh:
        fh.write("a,row,cut\r\n")
    snap = until(state, lambda s: "could not read the results" in s.html)
    assert snap.finished == 4 and 'data-finished="4"' in snap.html
    assert "line(s) that are not rows" in snap.html


def test_http_routes(tmp_path):
    rows(5).to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "search.json").write_text(json.dumps({"num_workers": 2}))
    httpd = LiveServer(state_for(tmp_path), 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert httpd.url.startswith("http://127.0.0.1:") and httpd.server_address[0] == "127.0.0.1"
        page = urllib.request.urlopen(httpd.url, timeout=30).read().decode()
        assert "hpcnas live: " in page and 'data-finished="5"' in page and "state.json" in page
        state = json.loads(urllib.request.urlopen(httpd.url + "state.json", timeout=30).read())
        assert state["finished"] == 5 and state["version"] >= 1 and "of 2 workers busy" in state["html"]
        png = urllib.request.urlopen(httpd.url + "search.png?v=1", timeout=30)
        assert png.headers["Content-Type"] == "image/png" and png.read()[:4] == b"\x89PNG"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(httpd.url + "../results.csv", timeout=30)
        assert err.value.code == 404
    finally:
        httpd.shutdown()
        httpd.server_close()


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BALSAM_DB_PATH", raising=False)
    assert main(["serve", "--workflow", "wf"]) == 2
    assert "no Balsam DB given: pass --db PATH" in _err(capsys)
    assert main(["serve", "--db", str(tmp_path), "--workflow", "wf"]) == 2
    assert "is not a Balsam DB directory (no server-info file)" in _err(capsys)
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "is neither a directory nor a results.csv" in _err(capsys)
    assert main(["serve", str(tmp_path), "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in _err(capsys)
    assert main(["serve", str(tmp_path), "--interval", "0"]) == 2
    assert "--interval must be a positive" in _err(capsys)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", str(tmp_path), "--port", str(taken.getsockname()[1])]) == 2
    assert "is in use: choose another with --port, or --port 0" in _err(capsys)


def test_the_url_is_one_line_and_sigterm_stops_quietly(tmp_path):
    rows(2).to_csv(tmp_path / "results.csv", index=False)
    proc = subprocess.Popen([sys.executable, "-m", "hpcnas.analytics.cli", "serve", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/\n")
        assert 'data-finished="2"' in urllib.request.urlopen(url.strip(), timeout=30).read().decode()
    finally:
        proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert proc.stdout.read() == "" and "Traceback" not in proc.stderr.read()
