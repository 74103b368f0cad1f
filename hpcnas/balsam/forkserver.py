"""The serial worker's fork server: hpcnas evaluations start as forks of a pre-imported process.

Balsam's serial worker starts each job with :class:`subprocess.Popen`: for an hpcnas evaluation
(``PYTHON -m hpcnas.balsam.job_runner ...``, the :data:`~hpcnas.balsam.apps.RUNNER_APP`) that
is a fresh interpreter which then imports the job runner, about 0.2 s of CPU on an idle core and
seconds on a loaded machine, paid by every evaluation. Under the hpcnas ensemble
(:mod:`hpcnas.balsam.ensemble`), :func:`install` replaces the ``subprocess`` that Balsam's
``serial_mode_timed`` module sees by one whose ``Popen`` (:func:`popen`) hands such a job to a
:class:`ForkServer`: a process (:mod:`hpcnas.balsam.zygote`) that imported those modules once
and forks one child per job with the job's directory, environment, output file, CPU affinity
and arguments. Each evaluation is still a process of its own; the worker gets a
:class:`ForkedProcess` (``poll``, ``wait``, ``returncode``, ``terminate``, ``kill``, ``pid``),
so Balsam's exit-code rules (``RUN_DONE``, ``RUN_ERROR``, retries, kills at a time-out) are
unchanged. Every other job (a user's application, an ``envscript``, another Python or a job
whose ``PYTHON*``/``LD_*`` variables differ from the worker's) and MPI mode keep the plain
``Popen``.

If the zygote dies, the worker says so in one line on stderr and in its log, starts every later
job with the plain ``Popen``, and still learns the exit code of the jobs the zygote had started:
the worker is their child subreaper (``PR_SET_CHILD_SUBREAPER``), so they become its children.

``HPCNAS_FORK_SERVER=0`` turns it off (``1``, the default, on); the measured effect is in
``docs/balsam.rst``.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import types
from typing import Any

from hpcnas.balsam.apps import RUNNER_MODULE


KNOB = "HPCNAS_FORK_SERVER"
#: seconds a spawn waits for the zygote's answer (it imports for ~0.3 s when it starts)
SPAWN_TIMEOUT_S = 60.0
#: return code of a job whose exit status could not be read (its zygote died, status lost)
LOST_RETCODE = -9
#: environment variables that act at interpreter start-up: a job must share the zygote's
STARTUP_PREFIXES = ("PYTHON", "LD_")


class ForkServerGone(RuntimeError):
    """The zygote is not answering (it died or was never started)."""


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether :data:`KNOB` asks for the fork server; a bad value is a one-line UsageError."""
    from hpcnas.core.environment import switch

    return switch(KNOB, environ)


def startup_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(STARTUP_PREFIXES)}


class ForkedProcess:
    """A ``Popen``-like handle of one child of the zygote."""

    def __init__(self, server: "ForkServer", job_id: int, args: list[str], pid: int) -> None:
        self.server, self.job_id, self.args, self.pid = server, job_id, args, pid
        self.returncode: int | None = None
        self.stdout = self.stderr = self.stdin = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.server.pump(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            self.server.pump(left)
        return self.returncode  # type: ignore[return-value]

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[None, None]:
        self.wait(timeout)
        return None, None

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            self.server.send_signal(self, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The worker's side of one zygote (:mod:`hpcnas.balsam.zygote`)."""

    def __init__(self, python: str | None = None, env: dict[str, str] | None = None, subreaper: bool = True,
                 session: bool = False) -> None:
        """``subreaper``: make this process its children's reaper should the zygote die (the
        serial worker's way to learn their exit codes); without it their codes are lost then.
        ``session``: the zygote gets a session of its own, so that a signal to this process's
        group (Ctrl-C, a batch system's ``SIGTERM``) does not reach it; it still leaves when this
        process's end of its socket closes."""
        from hpcnas.balsam.zygote import set_subreaper

        self.python = python or sys.executable
        self.env = dict(os.environ if env is None else env)
        if subreaper and not set_subreaper():
            raise ForkServerGone("this system cannot make the worker a child subreaper")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # cwd "/": the zygote's sys.path[0] (``-m`` puts the start directory there) holds no
            # module that could shadow the job's; each child puts its job's directory there instead
            self.proc = subprocess.Popen([self.python, "-m", "hpcnas.balsam.zygote", str(theirs.fileno())],
                                         pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=self.env,
                                         cwd=os.sep, start_new_session=session)
        finally:
            theirs.close()
        self.sock = ours
        self.alive = True
        self.next_id = 0
        self.handles: dict[int, ForkedProcess] = {}  # running children, by job id
        self.replies: dict[int, dict[str, Any]] = {}

    def accepts(self, args: list[str], env: dict[str, str]) -> bool:
        """Whether the zygote can run ``args`` with ``env`` as a fresh interpreter would."""
        return (self.alive and len(args) >= 3 and args[0] == self.python and args[1] == "-m"
                and startup_env(env) == startup_env(self.env))

    def spawn(self, args: list[str], cwd: str, env: dict[str, str], out_fd: int,
              affinity: list[int] | None = None, keep_fd: int | None = None, session: bool = False) -> ForkedProcess:
        """Fork a child running ``args``: stdout and stderr on ``out_fd``; ``keep_fd`` (optional)
        becomes its descriptor :data:`~hpcnas.balsam.zygote.KEEP_FD`; ``session``: it calls ``setsid``."""
        if not self.alive:
            raise ForkServerGone("the fork server has exited")
        self.next_id += 1
        job_id = self.next_id
        msg = {"op": "spawn", "id": job_id, "argv": list(args), "cwd": cwd, "env": dict(env),
               "affinity": sorted(affinity or []), "session": session}
        try:
            socket.send_fds(self.sock, [json.dumps(msg).encode()], [out_fd] + ([keep_fd] if keep_fd is not None else []))
        except OSError:
            self.gone()
            raise ForkServerGone("the fork server has exited") from None
        deadline = time.monotonic() + SPAWN_TIMEOUT_S
        while job_id not in self.replies:
            if not self.alive or time.monotonic() > deadline:
                self.gone()
                raise ForkServerGone("the fork server did not start the job")
            self.pump(min(0.5, max(0.0, deadline - time.monotonic())))
        reply = self.replies.pop(job_id)
        if "pid" not in reply:
            raise ForkServerGone(f"the fork server could not start the job: {reply.get('error')}")
        handle = ForkedProcess(self, job_id, list(args), int(reply["pid"]))
        self.handles[job_id] = handle
        return handle

    def pump(self, timeout: float = 0.0) -> None:
        """Read the zygote's messages (waiting at most ``timeout`` for the first)."""
        if not self.alive:
            self._poll_orphans()
            return
        wait = timeout
        while True:
            try:
                ready, _, _ = select.select([self.sock], [], [], wait)
            except (OSError, ValueError):
                ready = [self.sock]
            if not ready:
                return
            wait = 0.0
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.gone()
                return
            msg = json.loads(data)
            job_id = int(msg["id"])
            if "exit" in msg:
                handle = self.handles.pop(job_id, None)
                if handle is not None:
                    handle.returncode = int(msg["exit"])
            else:
                self.replies[job_id] = msg

    def send_signal(self, handle: ForkedProcess, sig: int) -> None:
        if self.alive:
            try:
                self.sock.send(json.dumps({"op": "signal", "id": handle.job_id, "sig": int(sig)}).encode())
                return
            except OSError:
                self.gone()
        if handle.returncode is None:  # now our child (subreaper) and not reaped: its pid is its own
            try:
                os.kill(handle.pid, sig)
            except ProcessLookupError:
                pass

    def gone(self) -> None:
        """The zygote died: say so once, keep following the children it started."""
        if not self.alive:
            return
        self.alive = False
        try:
            self.proc.kill()
        except OSError:
            pass
        code = self.proc.wait()  # once reaped, its children are ours (we are their subreaper)
        self._drain()
        self.sock.close()
        message = (f"hpcnas: warning: the evaluations' fork server (pid {self.proc.pid}) exited with code {code}; "
                   f"its {len(self.handles)} running job(s) are followed, later jobs start as plain processes")
        print(message, file=sys.stderr, flush=True)
        self._poll_orphans()

    def _drain(self) -> None:
        """Read the exit messages the dead zygote left in the socket."""
        while True:
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except OSError:
                return
            if not data:
                return
            msg = json.loads(data)
            handle = self.handles.pop(int(msg["id"]), None) if "exit" in msg else None
            if handle is not None:
                handle.returncode = int(msg["exit"])

    def _poll_orphans(self) -> None:
        for job_id, handle in list(self.handles.items()):
            try:
                pid, status = os.waitpid(handle.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by the zygote after its exit message was lost
                pid, status = handle.pid, None
            if pid == 0:
                continue
            handle.returncode = LOST_RETCODE if status is None else os.waitstatus_to_exitcode(status)
            del self.handles[job_id]

    def close(self) -> None:
        if self.alive:
            self.alive = False
            self.sock.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_SERVER: ForkServer | None = None
_FAILED = False


def server(python: str | None = None) -> ForkServer | None:
    """This process's fork server, started on first use; None when off or it cannot start."""
    global _SERVER, _FAILED
    if _FAILED or not enabled():
        return None
    if _SERVER is None:
        try:
            _SERVER = ForkServer(python)
        except (OSError, ForkServerGone) as err:
            _FAILED = True
            print(f"hpcnas: warning: no fork server for evaluations ({err}); they start as plain processes",
                  file=sys.stderr, flush=True)
            return None
    return _SERVER


def is_runner(args: Any, shell: bool) -> bool:
    """``args`` is ``[PYTHON, "-m", hpcnas.balsam.job_runner, ...]`` (the runner app's command)."""
    return not shell and isinstance(args, (list, tuple)) and len(args) >= 3 and list(args[1:3]) == ["-m", RUNNER_MODULE]


def popen(args: Any, stdout: Any = None, stderr: Any = None, cwd: str | None = None,
          env: dict[str, str] | None = None, shell: bool = False, **kwargs: Any) -> Any:
    """Balsam's ``subprocess.Popen(args, stdout=outfile, stderr=STDOUT, cwd=, env=, shell=)``:
    a fork of the zygote for the job runner, the plain ``Popen`` for anything else."""
    if is_runner(args, shell) and stderr == subprocess.STDOUT and hasattr(stdout, "fileno") and not kwargs:
        env = dict(os.environ if env is None else env)
        srv = server()
        if srv is not None and srv.accepts(list(args), env):
            try:
                stdout.flush()
                return srv.spawn(list(args), cwd or os.getcwd(), env, stdout.fileno(), sorted(os.sched_getaffinity(0)))
            except ForkServerGone:
                pass  # said in one line by ForkServer.gone; this job starts the plain way
    return subprocess.Popen(args, stdout=stdout, stderr=stderr, cwd=cwd, env=env, shell=shell, **kwargs)


def install(stm: Any) -> None:
    """Make ``subprocess.Popen`` inside Balsam's ``serial_mode_timed`` (module ``stm``) :func:`popen`."""
    if not enabled() or getattr(stm, "_hpcnas_forkserver", False):
        return
    shim = types.ModuleType("subprocess")
    shim.__dict__.update(vars(subprocess))
    shim.Popen = popen  # type: ignore[attr-defined]
    stm.subprocess = shim
    stm._hpcnas_forkserver = True
