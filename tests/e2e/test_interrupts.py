"""SIGINT / SIGTERM at any moment of a real ``hpcnas`` search, and a process that always ends.

Each signal is sent when an event shows the moment was reached (hpcnas installed its handlers,
an extension module was loaded while the commands' options are built / while numpy is
imported, the start-up line was printed, the first / fifth row of results.csv was written): the search ends with one line on stderr and exit code 130 (SIGINT) or 143
(SIGTERM), no traceback, and every row written so far is complete; the same command resumes.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT, HPCNAS_DEBUG="")
HPCNAS = [sys.executable, "-m", "hpcnas.cli.main"]
TOY = ["--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.slow_run"]
OUTCOME = {signal.SIGINT: (130, "hpcnas: interrupted"), signal.SIGTERM: (143, "hpcnas: terminated")}
LIMIT = 120.0  # seconds any awaited event may take on a loaded machine


def rows(path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def _default_signals() -> None:  # a shell may start background jobs with SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _await(condition, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while not condition():
        assert proc.poll() is None, f"the search ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {LIMIT} s"
        time.sleep(0.01)


def _handlers_installed(pid: int) -> bool:
    """hpcnas catches SIGTERM from its first import on (Python itself catches only SIGINT)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            caught = int(next(l for l in fh if l.startswith("SigCgt:")).split()[1], 16)
    except (OSError, StopIteration):
        return False
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def _mapped(pid: int, name: str) -> bool:
    """A shared library whose path contains ``name`` is loaded: that import is under way."""
    try:
        with open(f"/proc/{pid}/maps") as fh:
            return name in fh.read()
    except OSError:
        return False


def _header_printed(proc: subprocess.Popen) -> bool:
    line = proc.stdout.readline()  # blocks until a line or the end of the output
    return line.startswith("hpcnas: hps random |") or (not line and proc.poll() is not None)


@pytest.mark.parametrize(
    "signum, moment",
    [(signal.SIGINT, "handlers"), (signal.SIGINT, "early import"), (signal.SIGINT, "numpy import"),
     (signal.SIGINT, "header"),
     (signal.SIGINT, "first row"), (signal.SIGINT, "mid-run"),
     (signal.SIGTERM, "handlers"), (signal.SIGTERM, "early import"), (signal.SIGTERM, "header"),
     (signal.SIGTERM, "mid-run")],
)
def test_a_signal_at_any_moment_ends_the_search_with_one_line(tmp_path, signum, moment) -> None:
    out = tmp_path / "out"
    err_path = tmp_path / "stderr.txt"
    def argv(max_evals: int) -> list[str]:
        return [*HPCNAS, "hps", "random", *TOY, "--max-evals", str(max_evals), "--num-workers", "2", "--seed", "1",
                "--output-dir", str(out)]

    with open(err_path, "w") as err:
        proc = subprocess.Popen(argv(1000), stdout=subprocess.PIPE, stderr=err, text=True, env=ENV,
                                preexec_fn=_default_signals)
    results = out / "results.csv"
    try:
        if moment == "handlers":
            _await(lambda: _handlers_installed(proc.pid), proc, "signal handlers")
        elif moment == "early import":  # shutil loads _bz2 while the commands' options are built
            _await(lambda: _mapped(proc.pid, "_bz2"), proc, "early import")
        elif moment == "numpy import":  # imports swallowed or mangled a KeyboardInterrupt
            _await(lambda: _mapped(proc.pid, "_multiarray_umath"), proc, "numpy import")
        elif moment == "header":
            _await(lambda: _header_printed(proc), proc, "start-up line")
        elif moment == "first row":
            _await(lambda: len(rows(results)) >= 1, proc, "first row")
        elif moment == "mid-run":
            _await(lambda: len(rows(results)) >= 5, proc, "fifth row")
        proc.send_signal(signum)
        proc.communicate(timeout=LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stderr = err_path.read_text()
    code, line = OUTCOME[signum]
    assert (proc.returncode, stderr.splitlines()) == (code, [line]), stderr[-3000:]
    raw = results.read_bytes() if results.exists() else b""
    assert not raw or raw.endswith(b"\n")  # no half-written row
    data = rows(results)
    assert all(r["status"] == "DONE" and r["objective"] for r in data)
    if moment in ("first row", "mid-run"):
        assert len(data) >= (1 if moment == "first row" else 5)
        resumed = subprocess.run(argv(len(data) + 2), capture_output=True, text=True, env=ENV, timeout=LIMIT)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        after = rows(results)
        assert len(after) == len(data) + 2 and after[: len(data)] == data


def test_a_swallowed_keyboard_interrupt_still_ends_with_130(tmp_path) -> None:
    """Code on the master's path caught the KeyboardInterrupt, so the search ended "normally":
    the command used to exit 0 (a batch script reads success); the signal's code wins."""
    flag = tmp_path / "in-ask"
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.swallowing_search", str(flag), "hps", "random", *TOY,
             "--max-evals", "50", "--num-workers", "2", "--seed", "1", "--output-dir", str(tmp_path / "out")],
            stdout=subprocess.DEVNULL, stderr=err, env=ENV, cwd=ROOT, preexec_fn=_default_signals)
    try:
        _await(flag.exists, proc, "the search waiting in ask")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130, stderr[-3000:]
    assert stderr.splitlines()[-1] == "hpcnas: interrupted"
    assert all(r["status"] == "DONE" for r in rows(tmp_path / "out" / "results.csv"))


def test_a_problem_module_thread_does_not_keep_the_finished_search_alive(tmp_path) -> None:
    """The search ends, then the CLI exits although the problem module's non-daemon thread runs."""
    try:
        proc = subprocess.run(
            [*HPCNAS, "hps", "random", "--problem", "tests.support.threaded_problem.Problem",
             "--run", "tests.support.toy.run", "--max-evals", "3", "--num-workers", "1",
             "--output-dir", str(tmp_path)],
            capture_output=True, text=True, env=ENV, timeout=LIMIT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the CLI was still running {LIMIT} s after it started (a 3-evaluation search)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3 evaluations, 0 failed" in proc.stdout
    assert proc.stderr.splitlines() == [
        "hpcnas: warning: exiting although 1 thread(s) still run (problem-module-thread): the problem or "
        "run function started them without daemon=True"
    ]
    assert len(rows(tmp_path / "results.csv")) == 3


@pytest.mark.parametrize("option, value", [("--max-resource", "inf"), ("--max-resource", "nan"),
                                           ("--reduction-factor", "inf")])
def test_non_finite_resources_are_one_line(tmp_path, option, value) -> None:
    """``hpcnas hps asha --max-resource inf`` used to build rungs forever, memory growing."""
    proc = subprocess.run(
        [*HPCNAS, "hps", "asha", "--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run",
         option, value, "--max-evals", "5", "--output-dir", str(tmp_path)],
        capture_output=True, text=True, env=ENV, timeout=LIMIT,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"hpcnas: error: {option} must be a finite number, got {value}: give the resource a run function "
        "trains up to, e.g. --max-resource 27 (epochs)"
    ]
