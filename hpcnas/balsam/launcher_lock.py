"""One hpcnas launcher per Balsam DB and workflow.

Two launchers on the same DB and workflow take the same jobs: the second one's ensemble may
lose its port to the first and leave an orphan holding evaluations for minutes, and after a DB
outage :class:`~hpcnas.balsam.launcher_supervisor.LauncherSupervisor` releases the jobs of a
launcher it believes dead. ``python -m hpcnas.balsam.launch`` therefore holds a Postgres
*advisory lock* for its whole life, on a connection of its own:

* ``--wf-filter WF``: exclusive on ``WF``, shared on "every workflow";
* ``--consume-all``: exclusive on "every workflow",

so a second launcher of the same workflow, or one of all workflows while another runs, is
refused with one line naming the first (its user, host, process and start time, from the
lock holder's ``application_name``). Postgres drops the lock the moment that connection closes
(the launcher ends, is killed, or its node dies and TCP keepalives give up), so a launcher
started after a crash is never refused by a ghost. Launchers of different workflows run side
by side. ``HPCNAS_LAUNCHER_LOCK=0`` switches the check off (several launchers on purpose).
"""
from __future__ import annotations

import getpass
import os
import socket
import time
import zlib
from typing import Any

from hpcnas.core import environment
from hpcnas.core.errors import HpcnasError

#: first key of hpcnas's advisory locks ("hpn"); the second is the workflow's checksum
LOCK_CLASS = 0x68706E
EVERY_WORKFLOW = "*"
APP_PREFIX = "hpcnas-launcher"


def workflow_key(workflow: str) -> int:
    return zlib.crc32(workflow.encode()) & 0x7FFFFFFF


class LauncherLock:
    """The advisory locks of one launcher (see the module docstring)."""

    def __init__(self, db_path: str, workflow: str | None) -> None:
        self.db_path = db_path
        self.workflow = workflow
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def acquire(self) -> None:
        """Take the locks, or raise :class:`HpcnasError` naming the launcher that holds one."""
        import psycopg2

        from hpcnas.balsam.server_info import connection_params

        who = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
        try:
            conn = psycopg2.connect(**connection_params(self.db_path), application_name=f"{APP_PREFIX} {who}"[:63],
                                    keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        except (psycopg2.Error, OSError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise HpcnasError(f"cannot reach the Balsam DB at {self.db_path} to check for another launcher "
                              f"({first}): start it (hpcnas balsam-env / balsamactivate) and try again") from None
        conn.autocommit = True
        wanted = ([(EVERY_WORKFLOW, "pg_try_advisory_lock")] if self.workflow is None else
                  [(EVERY_WORKFLOW, "pg_try_advisory_lock_shared"), (self.workflow, "pg_try_advisory_lock")])
        with conn.cursor() as cur:
            for name, function in wanted:
                cur.execute(f"SELECT {function}(%s, %s)", (LOCK_CLASS, workflow_key(name)))
                if not cur.fetchone()[0]:
                    holder = self._holder(cur, name)
                    conn.close()
                    raise HpcnasError(self._refusal(name, holder))
        self._conn = conn

    def _holder(self, cur: Any, name: str) -> str:
        cur.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 "
            "AND a.pid <> pg_backend_pid() ORDER BY l.mode DESC LIMIT 1",
            (LOCK_CLASS, workflow_key(name)),
        )
        row = cur.fetchone()
        return row[0].removeprefix(APP_PREFIX).strip() if row and row[0] else "a launcher of another user"

    def _refusal(self, name: str, holder: str) -> str:
        if self.workflow is None:
            what = f"another launcher already runs on this DB ({holder}) and --consume-all would take its jobs"
        elif name == EVERY_WORKFLOW:
            what = f"a launcher of every workflow (--consume-all) already runs on this DB ({holder})"
        else:
            what = f"a launcher of workflow {name} already runs on this DB ({holder})"
        return (f"{what}: two launchers would take the same jobs; wait for it to end or stop it, "
                "or set HPCNAS_LAUNCHER_LOCK=0 to run both on purpose")

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def launcher_lock(workflow: str | None, environ: dict[str, str] | None = None) -> LauncherLock | None:
    """The lock a launcher of ``workflow`` (None: ``--consume-all``) holds; None when switched off."""
    env = os.environ if environ is None else environ
    if environment.text("HPCNAS_LAUNCHER_LOCK", env) == "0":
        return None
    db_path = env.get("BALSAM_DB_PATH", "")
    if not db_path:
        raise HpcnasError("BALSAM_DB_PATH is not set: source balsamactivate DB (or hpcnas balsam-env DB) first")
    return LauncherLock(db_path, workflow)


__all__ = ["LauncherLock", "launcher_lock", "workflow_key"]
