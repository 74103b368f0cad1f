"""The launcher supervisor with real child processes and a scripted DB probe (no DB needed)."""
from __future__ import annotations

import json
import signal
import sys
import threading
import time

import psutil
import pytest

from hpcnas.balsam.launcher_supervisor import CHILD_ENV, LauncherSupervisor, option_value, with_time_left

#: a stand-in launcher: records its argv and environment, starts a grandchild, then sleeps
FAKE = (
    "import json, os, subprocess, sys, time\n"
    "grand = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "open(sys.argv[1], 'a').write(json.dumps({'argv': sys.argv[2:], 'child': os.environ.get('" + CHILD_ENV + "'),"
    " 'pid': os.getpid(), 'grand': grand.pid}) + '\\n')\n"
    "time.sleep(float(os.environ.get('FAKE_SLEEP', '120')))\n"
    "sys.exit(int(os.environ.get('FAKE_RC', '0')))\n"
)


def starts(path) -> list[dict]:
    try:
        return [json.loads(line) for line in open(path)]
    except FileNotFoundError:
        return []


def wait_for(predicate, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_option_value_and_time_left():
    argv = ["--wf-filter", "WF", "--job-mode=mpi", "--time-limit-minutes", "30"]
    assert option_value(argv, "--wf-filter") == "WF" and option_value(argv, "--job-mode") == "mpi"
    assert option_value(argv, "--time-limit-minutes") == "30" and option_value(argv, "--nope") is None
    assert with_time_left(argv, 12.5) == ["--wf-filter", "WF", "--job-mode=mpi", "--time-limit-minutes", "12.500"]
    assert with_time_left(["--time-limit-minutes=5"], -1) == ["--time-limit-minutes", "0.100"]


def test_restarts_the_launcher_once_the_db_is_back(tmp_path):
    record = tmp_path / "starts.jsonl"
    answers = iter([True, False, False, True] + [True] * 10_000)
    released = []
    sup = LauncherSupervisor(
        ["--wf-filter", "WF", "--time-limit-minutes", "30"], probe=lambda: next(answers),
        release=lambda: released.append(1) or 3, probe_interval=0.2, stop_timeout=5,
        launcher=[sys.executable, "-c", FAKE, str(record)],
    )
    thread = threading.Thread(target=sup.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(starts(record)) == 2)
        first, second = starts(record)
        assert first["argv"] == ["--wf-filter", "WF", "--time-limit-minutes", "30"] and first["child"] == "1"
        assert second["argv"][:3] == ["--wf-filter", "WF", "--time-limit-minutes"]
        assert 29.0 < float(second["argv"][3]) < 30.0  # the time left, not the whole limit again
        assert released == [1] and sup.restarts == 1
        # the old launcher and the evaluation it had started are gone; the new ones run
        wait_for(lambda: not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == "zombie")
        wait_for(lambda: not psutil.pid_exists(first["grand"]) or psutil.Process(first["grand"]).status() == "zombie")
        assert psutil.pid_exists(second["pid"])
    finally:
        sup._signal = signal.SIGTERM
        thread.join(timeout=30)
    assert not thread.is_alive()
    wait_for(lambda: not psutil.pid_exists(second["pid"]) or psutil.Process(second["pid"]).status() == "zombie")


def test_ends_with_the_launchers_exit_code_and_no_restart_without_outage(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP", "0.5")
    monkeypatch.setenv("FAKE_RC", "3")
    record = tmp_path / "starts.jsonl"
    sup = LauncherSupervisor([], probe=lambda: True, release=lambda: pytest.fail("nothing to release"),
                             probe_interval=0.1, launcher=[sys.executable, "-c", FAKE, str(record)])
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert sup.run() == 3
    assert len(starts(record)) == 1 and sup.restarts == 0
    # the caller's handlers are back (they leaked into the test process and broke later tests)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_launcher_that_dies_during_the_outage_is_restarted_after_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP", "0.3")
    record = tmp_path / "starts.jsonl"
    answers = iter([False] * 8 + [True] * 10_000)  # the first launcher exits while the DB is down
    sup = LauncherSupervisor([], probe=lambda: next(answers), release=lambda: 0, probe_interval=0.1,
                             launcher=[sys.executable, "-c", FAKE, str(record)])
    assert sup.run() == 0
    assert len(starts(record)) == 2 and sup.restarts == 1


def test_launch_without_db_is_one_line(monkeypatch, capsys):
    from hpcnas.balsam.launch import main

    monkeypatch.delenv("BALSAM_DB_PATH", raising=False)
    monkeypatch.delenv(CHILD_ENV, raising=False)
    assert main(["--consume-all"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no active Balsam DB" in err
