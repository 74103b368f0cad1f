"""A watchdog process that kills the local evaluator's process groups when the master dies.

Each local worker runs in its own process group, and a run function's own children (a
training subprocess, ``mpirun``, a data loader) join that group. The worker itself dies with
the master (Linux parent-death signal), but its children would not: after ``kill -9`` of the
master they ran on with parent 1. So the master starts one small :class:`Reaper` process (in
its own session, so a signal to the master's group does not reach it) and tells it, over a
pipe that only the master holds open, each worker group it creates and each one it has
cleaned up. When the pipe reaches end-of-file -- the master exited, however it died -- the
reaper sends ``SIGKILL`` to every group still registered and exits.

A process that leaves the group on purpose (``setsid``, ``start_new_session=True``) is not
covered; a run function doing that owns its cleanup.
"""
from __future__ import annotations

import os
import subprocess
import sys

#: the reaper's whole program (standard library only, run with ``python -S``: no site start-up)
_PROGRAM = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, pgid = line[:1], line[1:].strip()
    if pgid.isdigit():
        (groups.add if sign == "+" else groups.discard)(int(pgid))
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class Reaper:
    """Master side of the watchdog: :meth:`add` / :meth:`remove` process groups, :meth:`close`."""

    def __init__(self) -> None:
        read, self._write = os.pipe()  # both non-inheritable: no worker holds the write end
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-c", _PROGRAM],
                stdin=read, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )
        finally:
            os.close(read)

    def _send(self, text: str) -> None:
        try:
            os.write(self._write, text.encode())
        except OSError:  # the reaper is gone (killed by hand): nothing to tell
            pass

    def add(self, pgid: int) -> None:
        """Kill group ``pgid`` if the master dies before :meth:`remove`."""
        self._send(f"+{pgid}\n")

    def remove(self, pgid: int) -> None:
        """Group ``pgid`` has been cleaned up by the master: forget it (its id may be reused)."""
        self._send(f"-{pgid}\n")

    def close(self, timeout: float = 5.0) -> None:
        """End the reaper (it kills whatever is still registered)."""
        if self._write < 0:
            return
        os.close(self._write)
        self._write = -1
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


__all__ = ["Reaper"]
