"""The serial worker's fork server (:mod:`hpcnas.balsam.forkserver`, :mod:`hpcnas.balsam.zygote`).

Each evaluation forked by the zygote must behave as the fresh process Balsam's worker started
before: its exit code (also after ``os._exit``, a segfault, SIGKILL), signals from the worker,
``wait(timeout)``, its environment, directory and descriptors; and a zygote that dies must lose
no job. The jobs here are tiny modules in the job's directory (``python -m MODULE``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hpcnas.balsam import forkserver
from hpcnas.balsam.zygote import set_subreaper

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, time
    what = sys.argv[1]
    if what == "env":
        fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
        print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv[1:], "fds": fds,
                          "path0": sys.path[0], "stdin": os.readlink("/proc/self/fd/0"),
                          "cmdline": open("/proc/self/cmdline", "rb").read().replace(b"\\0", b" ").decode()}))
        print("to stderr", file=sys.stderr)
    elif what == "exit":
        sys.exit(int(sys.argv[2]))
    elif what == "_exit":
        os._exit(int(sys.argv[2]))
    elif what == "raise":
        raise ValueError("boom")
    elif what == "signal":
        os.kill(os.getpid(), int(sys.argv[2]))
    elif what == "sleep":
        print("sleeping", flush=True)
        time.sleep(60)
""")


@pytest.fixture(scope="module")
def jobdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("fork-jobs")
    (path / "fsjob.py").write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def server():
    srv = forkserver.ForkServer()
    yield srv
    srv.close()
    set_subreaper(False)


def start(srv, jobdir, *args, name="job"):
    out = open(jobdir / f"{name}.out", "wb")
    env = {**os.environ, "HPCNAS_TEST_JOB": name}
    handle = srv.spawn([sys.executable, "-m", "fsjob", *args], str(jobdir), env, out.fileno(), [0])
    out.close()
    return handle


@pytest.mark.parametrize("args, code", [(("exit", "0"), 0), (("exit", "3"), 3), (("_exit", "7"), 7),
                                        (("raise",), 1), (("signal", str(int(signal.SIGSEGV))), -11),
                                        (("signal", str(int(signal.SIGKILL))), -9)])
def test_exit_codes_as_popen(server, jobdir, args, code):
    handle = start(server, jobdir, *args)
    assert handle.wait(timeout=20) == code
    assert handle.returncode == code and handle.poll() == code


def test_terminate_and_kill_reach_the_child(server, jobdir):
    term, kill = start(server, jobdir, "sleep", name="term"), start(server, jobdir, "sleep", name="kill")
    for name in ("term", "kill"):
        deadline = time.monotonic() + 20
        while b"sleeping" not in (jobdir / f"{name}.out").read_bytes() and time.monotonic() < deadline:
            server.pump(0.05)
    with pytest.raises(subprocess.TimeoutExpired):
        term.wait(timeout=0.1)
    assert term.poll() is None
    term.terminate()
    kill.kill()
    assert term.wait(timeout=20) == -signal.SIGTERM
    assert kill.wait(timeout=20) == -signal.SIGKILL


def test_child_sees_the_job_as_a_fresh_process_would(server, jobdir):
    handle = start(server, jobdir, "env", "x y", name="env")
    assert handle.wait(timeout=20) == 0
    text = (jobdir / "env.out").read_text()
    got = json.loads(text.splitlines()[0])
    assert "to stderr" in text  # stderr on the job's file
    assert "Warning" not in text  # nothing of the zygote's own in the job's output
    fresh = subprocess.run([sys.executable, "-m", "fsjob", "env", "x y"], cwd=jobdir, capture_output=True, text=True,
                           env={**os.environ, "HPCNAS_TEST_JOB": "env"}, stdin=subprocess.DEVNULL, check=True)
    want = json.loads(fresh.stdout.splitlines()[0])
    assert got["env"] == want["env"]
    assert got["cwd"] == want["cwd"] == str(jobdir)
    assert got["argv"] == ["env", "x y"] and got["path0"] == want["path0"]
    assert got["fds"] == [0, 1, 2, 3]  # 3: the listing itself; no socket of the worker or zygote
    assert got["stdin"] == "/dev/null"
    assert f"{sys.executable} -m fsjob env x y" in got["cmdline"]  # ps shows the job, not the zygote


def test_zygote_death_loses_no_job_and_falls_back(jobdir, capsys, monkeypatch):
    srv = forkserver.ForkServer()
    try:
        running = start(srv, jobdir, "sleep", name="orphan")
        done = start(srv, jobdir, "exit", "5", name="done")
        deadline = time.monotonic() + 20
        while b"sleeping" not in (jobdir / "orphan.out").read_bytes() and time.monotonic() < deadline:
            srv.pump(0.05)
        assert done.wait(timeout=20) == 5
        srv.proc.kill()
        srv.proc.wait(timeout=20)
        srv.pump(0.5)
        assert not srv.alive
        err = capsys.readouterr().err
        # exactly one line on stderr
        lines = [line for line in err.splitlines() if line.startswith("hpcnas: warning: the evaluations' fork server")]
        assert len(lines) == 1 and "plain processes" in lines[0] and err.count("exited with code") == 1, err
        assert running.poll() is None  # still running, now the worker's child
        running.terminate()
        assert running.wait(timeout=20) == -signal.SIGTERM
        monkeypatch.setattr(forkserver, "_SERVER", srv)
        monkeypatch.setenv(forkserver.KNOB, "1")
        with open(jobdir / "after.out", "wb") as out:
            proc = forkserver.popen([sys.executable, "-m", forkserver.RUNNER_MODULE, "--help"], stdout=out,
                                    stderr=subprocess.STDOUT, cwd=str(jobdir))
        assert isinstance(proc, subprocess.Popen) and proc.wait(timeout=30) == 0
    finally:
        srv.close()
        set_subreaper(False)


def test_only_the_job_runner_goes_to_the_fork_server():
    py = sys.executable
    assert forkserver.is_runner([py, "-m", "hpcnas.balsam.job_runner", "f", "b64:x"], False)
    assert not forkserver.is_runner(f"{py} -m hpcnas.balsam.job_runner f x", True)  # envscript: a shell line
    assert not forkserver.is_runner([py, "-m", "hpcnas.cli.main", "hps", "ambs"], False)
    assert not forkserver.is_runner(["/bin/myapp", "-m", "x"], False)


def test_knob(monkeypatch):
    from hpcnas.core.errors import UsageError

    assert forkserver.enabled({}) and forkserver.enabled({"HPCNAS_FORK_SERVER": "1"})
    assert not forkserver.enabled({"HPCNAS_FORK_SERVER": "0"})
    with pytest.raises(UsageError, match="HPCNAS_FORK_SERVER='yes' is neither 0 nor 1"):
        forkserver.enabled({"HPCNAS_FORK_SERVER": "yes"})


def test_balsam_worker_starts_jobs_through_its_subprocess_module():
    """:func:`forkserver.install` swaps the ``subprocess`` of ``serial_mode_timed``: a Balsam whose
    worker started jobs another way would silently bypass the fork server."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("balsam.launcher.serial_mode_timed")
    assert spec is not None and spec.origin
    tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    worker = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Worker")
    launch = next(n for n in worker.body if isinstance(n, ast.FunctionDef) and n.name == "_launch_proc")
    calls = [n for n in ast.walk(launch) if isinstance(n, ast.Call) and ast.unparse(n.func) == "subprocess.Popen"]
    assert len(calls) == 1
    keywords = {k.arg: ast.unparse(k.value) for k in calls[0].keywords}
    assert keywords.get("stderr") == "subprocess.STDOUT" and {"stdout", "cwd", "env", "shell"} <= set(keywords)
