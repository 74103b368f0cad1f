"""End to end: real ``hpcnas`` processes with the local evaluator (search, kill, resume)."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT, HPCNAS_DEBUG="")
HPCNAS = [sys.executable, "-m", "hpcnas.cli.main"]
TOY = ["--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.slow_run"]


def rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_ambs_on_polynome2(tmp_path) -> None:
    proc = subprocess.run(
        [*HPCNAS, "hps", "ambs", "--problem", "hpcnas.benchmark.polynome2.Problem",
         "--run", "hpcnas.benchmark.polynome2.run", "--max-evals", "40", "--num-workers", "2",
         "--seed", "1", "--output-dir", str(tmp_path)],
        capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "hps ambs | evaluator local, 2 workers | max evals 40" in proc.stdout
    data = rows(tmp_path / "results.csv")
    assert len(data) == 40 and len({r["job_id"] for r in data}) == 40
    assert all(r["status"] == "DONE" for r in data)
    assert {r["worker"] for r in data} == {"local-0", "local-1"}
    assert json.loads((tmp_path / "search.json").read_text())["search"] == "ambs"
    assert "Traceback" not in proc.stderr


def test_module_entry_point_runs_a_search(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hpcnas.search.hps.age", *TOY, "--max-evals", "5", "--output-dir", str(tmp_path)],
        capture_output=True, text=True, env=ENV, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(rows(tmp_path / "results.csv")) == 5


def _default_sigint() -> None:
    """A test run as a background job of a script inherits SIGINT ignored, and so would the master
    (it would then finish its search: exit code 0 instead of 130)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path, max_evals: int) -> subprocess.Popen:
    return subprocess.Popen(
        [*HPCNAS, "hps", "random", *TOY, "--max-evals", str(max_evals), "--num-workers", "2",
         "--output-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, preexec_fn=_default_sigint,
    )


def _wait_rows(path, n: int, proc: subprocess.Popen, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if os.path.exists(path) and len(rows(path)) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    pytest.fail(f"fewer than {n} rows in {path} after {limit} s")


def _gone(pids: list[int], limit: float = 10) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]:
            return True
        time.sleep(0.1)
    return False


def test_killed_master_resumes_without_rerunning(tmp_path) -> None:
    path = tmp_path / "results.csv"
    master = _start(tmp_path, 30)
    _wait_rows(path, 5, master)
    workers = [c.pid for c in psutil.Process(master.pid).children(recursive=True)]
    assert workers
    master.kill()  # SIGKILL: no cleanup in the master at all
    master.communicate()
    assert _gone(workers), "worker processes outlived the killed master"
    before = rows(path)
    assert 5 <= len(before) < 30

    resumed = _start(tmp_path, 30)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    after = rows(path)
    assert len(after) == 30 and len({r["job_id"] for r in after}) == 30
    assert after[: len(before)] == before
    assert f"({len(before)} resumed)" in out


@pytest.mark.parametrize(
    "signum, code, line",
    [(signal.SIGINT, 130, "hpcnas: interrupted"), (signal.SIGTERM, 143, "hpcnas: terminated")],
)
def test_interrupt_stops_cleanly(tmp_path, signum, code, line) -> None:
    path = tmp_path / "results.csv"
    master = _start(tmp_path, 1000)
    _wait_rows(path, 3, master)
    workers = [c.pid for c in psutil.Process(master.pid).children(recursive=True)]
    master.send_signal(signum)
    out, err = master.communicate(timeout=60)
    assert master.returncode == code
    assert err.strip().splitlines()[-1] == line
    assert _gone(workers)
    data = rows(path)
    assert data and all(r["status"] == "DONE" for r in data)
