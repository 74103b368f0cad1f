"""One search per output directory (issue 12): search.lock, flock and the owner record.

Two real masters on one --output-dir: the second is refused with one line and exit 2 while the
first runs and finishes with exactly --max-evals rows. The record alone refuses a live owner
(as where flock does nothing: NFS without a lock manager), a record of a dead process on this
host is taken over, one of another host is not.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.search.output_lock import LOCK_FILE, OutputLock, this_owner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT, HPCNAS_DEBUG="")
HERE = "tests.unit.test_output_lock"
IN_USE = (r"output dir {dir} is in use by another search \(pid {pid} on host {host} since "
          r"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\): wait for it to end or use another --output-dir")


def wait_for_go(config: dict) -> float:
    """A run function that holds its evaluation until the file ``go`` exists in its cwd."""
    deadline = time.monotonic() + 120
    while not os.path.exists("go") and time.monotonic() < deadline:
        time.sleep(0.02)
    return float(config["x"])


def _write_record(directory, **owner) -> None:
    record = dict(this_owner(), **owner)
    (directory / LOCK_FILE).write_text(json.dumps(record))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_lock_is_refused_until_the_first_is_released(tmp_path) -> None:
    first = OutputLock(str(tmp_path))
    first.acquire()
    with pytest.raises(HpcnasError) as err:
        OutputLock(str(tmp_path)).acquire()
    pattern = IN_USE.format(dir=re.escape(str(tmp_path)), pid=os.getpid(), host=re.escape(socket.gethostname()))
    assert re.fullmatch(pattern, str(err.value)), str(err.value)
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()
    with OutputLock(str(tmp_path)) as second:
        assert second.held
    assert os.listdir(tmp_path) == []  # no temporary file left


def test_the_record_alone_refuses_a_live_owner(tmp_path) -> None:
    """As on a file system where flock does nothing: nobody holds the flock, the owner is alive."""
    parent = psutil.Process(os.getppid())
    _write_record(tmp_path, pid=parent.pid, process_start=parent.create_time())
    with pytest.raises(HpcnasError, match=rf"in use by another search \(pid {parent.pid} on host "):
        OutputLock(str(tmp_path)).acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == parent.pid  # left alone


def test_a_record_of_a_dead_process_on_this_host_is_taken_over(tmp_path, caplog) -> None:
    dead = _dead_pid()
    _write_record(tmp_path, pid=dead)
    with OutputLock(str(tmp_path)):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert any(f"pid {dead}" in m and "has ended" in m for m in caplog.messages)


def test_a_record_of_a_killed_but_unreaped_process_is_taken_over(tmp_path) -> None:
    """A master killed with ``kill -9`` whose parent died with it stays a zombie where the
    container's init does not reap orphans: its pid still answers ``kill(pid, 0)`` (CI saw the
    restarted master refused as 'in use by another search')."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    zombie = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while zombie.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        _write_record(tmp_path, pid=proc.pid, process_start=zombie.create_time())
        with OutputLock(str(tmp_path)):
            assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        proc.wait()


def test_a_reused_pid_is_not_the_owner(tmp_path) -> None:
    parent = psutil.Process(os.getppid())
    _write_record(tmp_path, pid=parent.pid, process_start=parent.create_time() - 3600.0)
    with OutputLock(str(tmp_path)) as lock:
        assert lock.held


def test_a_record_of_another_host_is_refused_with_what_to_do(tmp_path) -> None:
    _write_record(tmp_path, host="node-that-went-down", pid=_dead_pid())
    with pytest.raises(HpcnasError) as err:
        OutputLock(str(tmp_path)).acquire()
    message = str(err.value)
    assert "in use by another search (pid" in message and "on host node-that-went-down since" in message
    assert re.search(r"if it is not running any more \(its node went down, last active \d{4}-.*\), delete "
                     + re.escape(str(tmp_path / LOCK_FILE)) + "$", message), message


def test_an_unreadable_record_is_refused(tmp_path) -> None:
    (tmp_path / LOCK_FILE).write_bytes(b"\x00\x00garbage")
    with pytest.raises(HpcnasError, match=r"has a lock file .*search\.lock that does not name its search: if no "
                                          r"search runs in .*, delete it"):
        OutputLock(str(tmp_path)).acquire()


def _default_sigint() -> None:
    # a pytest started as a background job ignores SIGINT, and hpcnas keeps an inherited "ignore"
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _master(out, max_evals: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hpcnas.cli.main", "hps", "random", "--problem", "tests.support.toy.Problem",
         "--run", f"{HERE}.wait_for_go", "--max-evals", str(max_evals), "--num-workers", "2", "--seed", "4",
         "--no-progress", "--output-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=out.parent,
        preexec_fn=_default_sigint,
    )


def _wait_for_lock(master: subprocess.Popen, out) -> dict:
    deadline = time.monotonic() + 120
    while not (out / LOCK_FILE).exists():
        assert master.poll() is None, master.communicate()
        assert time.monotonic() < deadline, "the first master never took the lock"
        time.sleep(0.02)
    return json.loads((out / LOCK_FILE).read_text())


def test_two_masters_on_one_output_dir_the_second_is_refused(tmp_path) -> None:
    out = tmp_path / "out"
    first = _master(out, 6)
    try:
        owner = _wait_for_lock(first, out)
        second = _master(out, 6)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        pattern = IN_USE.format(dir=re.escape(str(out)), pid=first.pid, host=re.escape(socket.gethostname()))
        assert len(err.splitlines()) == 1 and re.fullmatch("hpcnas: error: " + pattern, err.strip()), err
        assert owner["pid"] == first.pid
    finally:
        (tmp_path / "go").write_text("")
    stdout, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and len({r["job_id"] for r in rows}) == 6
    assert len({(r["p:x"], r["p:units"], r["p:optimizer"], r["p:scale"]) for r in rows}) == 6
    assert not (out / LOCK_FILE).exists()


def test_a_master_killed_with_sigkill_leaves_a_lock_the_next_one_takes_over(tmp_path) -> None:
    out = tmp_path / "out"
    first = _master(out, 4)
    _wait_for_lock(first, out)
    first.kill()
    first.communicate(timeout=60)
    assert (out / LOCK_FILE).exists()
    (tmp_path / "go").write_text("")
    second = _master(out, 4)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"taking over {out / LOCK_FILE}: the search that held it (pid {first.pid} on host" in err
    assert not (out / LOCK_FILE).exists()


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_master_stopped_by_a_signal_removes_its_lock(tmp_path, signum, code) -> None:
    out = tmp_path / "out"
    master = _master(out, 4)
    _wait_for_lock(master, out)
    master.send_signal(signum)
    _, err = master.communicate(timeout=120)
    assert master.returncode == code, err
    assert not (out / LOCK_FILE).exists()
