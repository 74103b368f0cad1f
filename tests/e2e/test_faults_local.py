"""Fault injection on real ``hpcnas`` processes with the local evaluator (issue 7).

* Every kind of broken run function in one search: segfault, ``os._exit(1)``, ``sys.exit(3)``,
  an exception, a hang past ``--eval-timeout``, NaN / a string / None returned, 1 GB written to
  stdout before dying. Each is a failed row, the search goes on to exactly ``max-evals`` rows,
  and the master's resident memory stays bounded (sampled with psutil while it runs).
* Disk full in the output directory (a tiny tmpfs when root, else a file-size limit): one clear
  line, exit 2, every row written so far complete and readable; the same command resumes once
  there is room again.
* results.csv cut mid-line (power loss): the resumed search says so on stderr, keeps every
  complete row, moves the partial one to results.csv.damaged and ends with exactly
  ``max-evals`` distinct rows.

(SIGKILL of the master + resume with the local evaluator is ``tests/e2e/test_local_search.py``.)
"""
from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest

from hpcnas.problem import HpProblem

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT, HPCNAS_DEBUG="")
HPCNAS = [sys.executable, "-m", "hpcnas.cli.main"]
HERE = "tests.e2e.test_faults_local"

#: fault kind -> (expected status, words expected in the error)
FAULTS = {
    "ok": ("DONE", ""),
    "segfault": ("FAILED", "SIGSEGV"),
    "os_exit": ("FAILED", "exited with code 1"),
    "sys_exit": ("FAILED", "SystemExit"),
    "raise": ("FAILED", "ValueError: injected"),
    "hang": ("TIMEOUT", "--eval-timeout"),
    "nan": ("FAILED", "non-finite"),
    "string": ("FAILED", "not a number"),
    "none": ("FAILED", "returned None"),
    "gigabyte": ("FAILED", "exited with code 1"),
}

FaultProblem = HpProblem()
FaultProblem.add_hyperparameter(list(FAULTS), "fault")
FaultProblem.add_hyperparameter((0.0, 1.0), "x")
for _kind in FAULTS:
    FaultProblem.add_starting_point(fault=_kind, x=0.5)


def fault_run(config: dict[str, Any]) -> Any:
    """Misbehave as ``config["fault"]`` says; ``ok`` returns ``x``."""
    kind = config["fault"]
    if kind == "segfault":
        import ctypes

        ctypes.string_at(0)
    elif kind == "os_exit":
        os._exit(1)
    elif kind == "sys_exit":
        sys.exit(3)
    elif kind == "raise":
        raise ValueError("injected")
    elif kind == "hang":
        while True:
            time.sleep(0.05)
    elif kind == "nan":
        return float("nan")
    elif kind == "string":
        return "forty-two"
    elif kind == "none":
        return None
    elif kind == "gigabyte":
        block = b"y" * (1 << 20)
        for _ in range(1024):
            os.write(1, block)
        os._exit(1)
    return float(config["x"])


def spawn_child_run(config: dict[str, Any]) -> float:
    """Start a child process (``sleep 300``, like a training subprocess), name its PID, wait for it."""
    child = subprocess.Popen(["sleep", "300"])
    with open("child.pid.tmp", "w") as fh:
        fh.write(str(child.pid))
    os.replace("child.pid.tmp", "child.pid")  # the worker's cwd is the master's
    child.wait()
    return 0.0


def record_outcome(fault: str, injected: int, expected: int, job_ids: list[str],
                   db_job_ids: list[str] | None = None) -> None:
    """Append what a fault test measured to ``$HPCNAS_FAULT_REPORT`` (read by benchmarks/fault_catalogue.py)."""
    path = os.environ.get("HPCNAS_FAULT_REPORT")
    if not path:
        return
    distinct = len(set(job_ids))
    duplicated = len(job_ids) - distinct
    if db_job_ids is not None:
        duplicated += len(db_job_ids) - len(set(db_job_ids))
    with open(path, "a") as fh:
        fh.write(json.dumps({"fault": fault, "injected": injected, "completed": 1, "expected": expected,
                             "distinct": distinct, "lost": max(0, expected - distinct),
                             "duplicated": duplicated}) + "\n")


def rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _sample_rss(proc: subprocess.Popen, results: str, limit: float) -> tuple[int, int]:
    """Wait for ``proc``, sampling its RSS; returns (peak RSS, RSS when ``results`` first appeared)."""
    ps = psutil.Process(proc.pid)
    peak = loaded = 0
    deadline = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            rss = ps.memory_info().rss
        except psutil.Error:
            break
        if not loaded and os.path.exists(results):  # imports done, first results recorded
            loaded = rss
        peak = max(peak, rss)
        time.sleep(0.05)
    return peak, loaded


def test_every_broken_run_function_is_a_failed_row_and_master_memory_is_bounded(tmp_path) -> None:
    max_evals = len(FAULTS)  # the starting points: each fault exactly once
    master = subprocess.Popen(
        [*HPCNAS, "hps", "random", "--problem", f"{HERE}.FaultProblem", "--run", f"{HERE}.fault_run",
         "--max-evals", str(max_evals), "--num-workers", "2", "--eval-timeout", "15", "--seed", "5",
         "--output-tail", "1000", "--output-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=tmp_path,
    )
    peak, first = _sample_rss(master, str(tmp_path / "results.csv"), 300)
    out, err = master.communicate(timeout=60)
    assert master.returncode == 0, err.decode()[-3000:]
    data = rows(tmp_path / "results.csv")
    assert len(data) == max_evals and len({r["job_id"] for r in data}) == max_evals
    seen = {}
    for row in data:
        status, words = FAULTS[row["p:fault"]]
        assert row["status"] == status, row
        assert words in row["error"], row
        assert len(row["error"]) <= 500
        if status == "DONE":
            assert float(row["objective"]) == pytest.approx(float(row["p:x"]))
        else:
            assert row["objective"] == ""
        seen[row["p:fault"]] = row["status"]
    assert set(seen) == set(FAULTS)  # every fault was injected once (starting points)
    summary = out.decode().strip().splitlines()[-1]
    failures = sum(r["status"] != "DONE" for r in data)
    assert f"{max_evals} evaluations, {failures} failed" in summary
    # the 1 GB of output never reached the master: bounded resident memory
    print(f"\nmaster RSS: at the first result {first / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB")
    assert peak < 400 * 2**20, f"master peak RSS {peak / 2**20:.0f} MiB"
    assert peak - first < 100 * 2**20, f"master RSS grew by {(peak - first) / 2**20:.0f} MiB"
    record_outcome(f"broken run functions ({', '.join(k for k in FAULTS if k != 'ok')}); "
                   f"master RSS peak {peak / 2**20:.0f} MiB, +{(peak - first) / 2**20:.0f} MiB",
                   len(FAULTS) - 1, max_evals, [r["job_id"] for r in data])


# --------------------------------------------------------------------- disk full
class SmallDisk:
    """A directory with little space: a tmpfs (root) or, else, a file-size limit on the master."""

    def __init__(self, base, size_kib: int) -> None:
        self.path = str(base / "small")
        os.makedirs(self.path)
        self.tmpfs = False
        self.limit = size_kib * 1024
        if os.geteuid() == 0:
            proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", self.path],
                                  capture_output=True, text=True)
            self.tmpfs = proc.returncode == 0

    def preexec(self):
        if self.tmpfs:
            return None

        def limit() -> None:  # bounded simulation: writes past the limit fail with EFBIG
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.limit))

        return limit

    def grow(self, size_kib: int) -> None:
        if self.tmpfs:
            subprocess.run(["mount", "-o", f"remount,size={size_kib}k", self.path], check=True)
        else:
            self.limit = size_kib * 1024

    def close(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", "-l", self.path], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    disk = SmallDisk(tmp_path, 48)
    yield disk
    disk.close()


def _search(out: str, max_evals: int, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HPCNAS, "hps", "random", "--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run",
         "--max-evals", str(max_evals), "--num-workers", "2", "--seed", "2", "--output-dir", out],
        capture_output=True, text=True, env=ENV, timeout=300, preexec_fn=preexec,
    )


def test_disk_full_is_one_line_and_rows_written_so_far_stay_readable(small_disk) -> None:
    out = os.path.join(small_disk.path, "run")
    proc = _search(out, 100000, small_disk.preexec())
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    assert lines[-1].startswith(f"hpcnas: error: cannot write {out}/results.csv: ")
    assert ("No space left on device" in lines[-1]) or ("File too large" in lines[-1])
    assert "rows before them are intact: free space and run the same command again to resume" in lines[-1]
    raw = open(os.path.join(out, "results.csv"), "rb").read()
    assert raw.endswith(b"\n")  # no partial row left behind
    before = rows(os.path.join(out, "results.csv"))
    assert len(before) > 20 and all(r["status"] == "DONE" and r["objective"] for r in before)

    small_disk.grow(4096)
    resumed = _search(out, len(before) + 10, small_disk.preexec())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = rows(os.path.join(out, "results.csv"))
    assert len(after) == len(before) + 10 and after[: len(before)] == before
    assert len({r["job_id"] for r in after}) == len(after)
    record_outcome(f"disk full ({'tmpfs' if small_disk.tmpfs else 'RLIMIT_FSIZE'}) + resume", 1, len(before) + 10,
                   [r["job_id"] for r in after])


# --------------------------------------------------------------------- power loss
def test_truncated_results_csv_resume_moves_the_partial_row_aside_and_says_so(tmp_path) -> None:
    out = str(tmp_path / "run")
    first = _search(out, 10)
    assert first.returncode == 0, first.stderr
    path = os.path.join(out, "results.csv")
    raw = open(path, "rb").read()
    last_start = raw.rstrip(b"\n").rfind(b"\n") + 1
    cut = last_start + (len(raw) - last_start) // 2
    with open(path, "r+b") as fh:  # power loss in the middle of the last row
        fh.truncate(cut)
    complete = rows(path)[:-1]
    assert len(complete) == 9

    resumed = _search(out, 15)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{path}: moved 1 line(s) that are not rows (line 11: cut short" in resumed.stderr
    assert open(path + ".damaged", "rb").read() == raw[last_start:cut] + b"\r\n"  # kept, as it was
    assert "9 evaluations recorded" in resumed.stderr
    after = rows(path)
    assert len(after) == 15 and len({r["job_id"] for r in after}) == 15
    assert after[:9] == complete
    assert "15 evaluations (9 resumed)" in resumed.stdout
    record_outcome("results.csv cut mid-line + resume", 1, 15, [r["job_id"] for r in after])


# --------------------------------------------------------------------- orphans (issue 12)
def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_kill_9_master_takes_the_run_functions_children_with_it(tmp_path) -> None:
    master = subprocess.Popen(
        [*HPCNAS, "hps", "random", "--problem", "tests.support.toy.Problem", "--run", f"{HERE}.spawn_child_run",
         "--max-evals", "2", "--num-workers", "1", "--output-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=tmp_path,
    )
    pid_file = tmp_path / "child.pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists():
        assert master.poll() is None, master.communicate()
        assert time.monotonic() < deadline, "the run function never started its child"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    master.kill()  # SIGKILL: the master does no cleanup at all
    master.communicate()
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphaned = _alive(child)
    if orphaned:
        parent = psutil.Process(child).ppid()
        os.kill(child, signal.SIGKILL)
        pytest.fail(f"the run function's child {child} outlived the killed master by 30 s (parent now {parent})")
    record_outcome("kill -9 master (local): the run function's own child processes die too", 1, 1, ["child"])
