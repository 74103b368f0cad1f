"""Keep a Balsam launcher going across a database outage.

Balsam 0.x's launcher does not survive a lost DB connection: its job-transition processes (and,
in serial mode, the ensemble's status updater) die on the first failed query while the launcher
process itself hangs on, running nothing. ``python -m hpcnas.balsam.launch`` therefore runs the
launcher as a child process under :class:`LauncherSupervisor`, which

1. probes the DB every ``probe_interval`` seconds (one ``SELECT 1`` on a fresh connection);
2. once the DB answers again after it stopped answering, stops the child and the processes it
   started (``SIGTERM``, ``SIGKILL`` after ``stop_timeout`` seconds), puts the jobs the child held back
   to ``RESTART_READY`` (:func:`hpcnas.balsam.recover.release_dead_locks`, as ``hpcnas
   balsam-recover`` does) and starts a new launcher with the same arguments and the time left
   of ``--time-limit-minutes``;
3. forwards ``SIGTERM``/``SIGINT`` (a scheduler's time limit, ``scancel``) to the child and
   exits with the child's exit code when it ends by itself.

An evaluation that was running during the outage runs once more under the new launcher; it keeps
its job and is counted once by the search. ``HPCNAS_LAUNCHER_SUPERVISE=0`` runs Balsam's launcher
directly in this process instead.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Sequence

#: set in the child's environment: run the launcher itself, not another supervisor
CHILD_ENV = "HPCNAS_LAUNCHER_CHILD"


def say(message: str) -> None:
    print(f"hpcnas-launch: {message}", file=sys.stderr, flush=True)


def option_value(argv: Sequence[str], name: str) -> str | None:
    """The value of ``--name V`` or ``--name=V`` in ``argv`` (last one wins), else None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def with_time_left(argv: Sequence[str], minutes_left: float) -> list[str]:
    """``argv`` with ``--time-limit-minutes`` replaced by ``minutes_left`` (at least 0.1)."""
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--time-limit-minutes":
            skip = i + 1 < len(argv)
            continue
        if arg.startswith("--time-limit-minutes="):
            continue
        out.append(arg)
    return [*out, "--time-limit-minutes", f"{max(minutes_left, 0.1):.3f}"]


def db_answers() -> bool:
    """One ``SELECT 1`` on a fresh connection to the active Balsam DB."""
    from django.db import connection

    try:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means: not answering now
        return False
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001
            pass


class LauncherSupervisor:
    """Run the launcher command as a child and restart it after a DB outage (module docstring)."""

    def __init__(
        self,
        argv: Sequence[str],
        probe: Callable[[], bool] = db_answers,
        release: Callable[[], int] | None = None,
        probe_interval: float = 2.0,
        stop_timeout: float = 20.0,
        launcher: Sequence[str] | None = None,
    ) -> None:
        self.argv = list(argv)
        #: the launcher command before ``argv`` (hpcnas's launcher without a supervisor)
        self.launcher = list(launcher or [sys.executable, "-m", "hpcnas.balsam.launch"])
        self.probe = probe
        self.release = release
        self.probe_interval = probe_interval
        self.stop_timeout = stop_timeout
        limit = option_value(self.argv, "--time-limit-minutes")
        self.limit_minutes = float(limit) if limit else 0.0
        self.started = time.monotonic()
        self.child: subprocess.Popen | None = None
        self.restarts = 0
        self._signal: int | None = None

    def command(self) -> list[str]:
        argv = self.argv
        if self.restarts and self.limit_minutes > 0:
            argv = with_time_left(argv, self.limit_minutes - (time.monotonic() - self.started) / 60)
        return [*self.launcher, *argv]

    def start_child(self) -> None:
        # same process group as this supervisor: a scheduler or kill(1) that ends the group ends all
        env = dict(os.environ, **{CHILD_ENV: "1"})
        self.child = subprocess.Popen(self.command(), env=env)

    def stop_child(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop the launcher and everything it started (its evaluations); returns its exit code."""
        import psutil

        child = self.child
        if child is None or child.poll() is not None:
            return None if child is None else child.returncode
        try:
            tree = [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for s, wait in ((sig, self.stop_timeout), (signal.SIGKILL, 30.0)):
            for proc in tree:
                try:
                    proc.send_signal(s)
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(tree, timeout=wait)
            tree = alive
            if not tree:
                break
        try:
            return child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signal = signum

    def run(self) -> int:
        """Supervise until the launcher ends or a signal stops it; the caller's SIGTERM/SIGINT
        handlers are back in place when this returns."""
        previous = {}
        if threading.current_thread() is threading.main_thread():  # (tests drive it from a thread)
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            return self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _supervise(self) -> int:
        self.start_child()
        outage_since: float | None = None
        while True:
            if self._signal is not None:
                say(f"signal {self._signal}: stopping the launcher")
                rc = self.stop_child(self._signal)
                return 128 + self._signal if rc is None else rc
            assert self.child is not None
            answers = self.probe()
            if not answers:
                if outage_since is None:
                    outage_since = time.monotonic()
                    say("the Balsam DB stopped answering; the launcher will be restarted once it is back")
            elif outage_since is not None:
                say(f"the Balsam DB answers again after {time.monotonic() - outage_since:.0f} s: restarting the launcher")
                self.stop_child()
                released = self.release() if self.release else 0
                say(f"{released} job(s) of the stopped launcher released; starting a new launcher")
                self.restarts += 1
                outage_since = None
                self.start_child()
                continue
            if answers and self.child.poll() is not None:
                return self.child.returncode
            if self.limit_minutes > 0 and time.monotonic() - self.started > self.limit_minutes * 60 + 120:
                say("time limit passed and the launcher is still running: stopping it")
                rc = self.stop_child()
                return 0 if rc is None else rc
            time.sleep(self.probe_interval)


def release_for(argv: Sequence[str]) -> Callable[[], int]:
    """Release the dead launcher's jobs of the launcher's ``--wf-filter`` workflow (all with ``--consume-all``)."""

    def release() -> int:
        from hpcnas.balsam.connect import connect
        from hpcnas.balsam.recover import release_dead_locks

        return release_dead_locks(connect(), workflow=option_value(argv, "--wf-filter"))

    return release


__all__ = ["CHILD_ENV", "LauncherSupervisor", "db_answers", "option_value", "release_for", "with_time_left"]
