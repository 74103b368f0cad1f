"""Release Balsam jobs held by launchers that died (``kill -9``, node failure, end of allocation).

A Balsam 0.x launcher locks the jobs it runs with ``lock = "host:pid"`` and refreshes a
``tick`` every minute; a *new* launcher clears locks only once at start-up and only when the
tick is older than 3 minutes. So after a crash, jobs stay ``RUNNING`` and locked, and a
launcher restarted right away never runs them. :func:`release_dead_locks` finds locks whose
owner is gone -- the process does not exist on this host, or its tick is stale -- and puts
``RUNNING`` jobs back to ``RESTART_READY`` (so they run again, adopted by the resumed search)
with an explanatory ``state_history`` line.
"""
from __future__ import annotations

import os
import socket
from typing import Any


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"balsam" in fh.read()
    except OSError:
        return True


def lock_is_dead(lock: str, tick_age_s: float, stale_after_s: float = 180.0, host: str | None = None) -> bool:
    """Whether a ``host:pid`` lock belongs to nobody (pure decision, used by the query below)."""
    if not lock:
        return False
    if tick_age_s > stale_after_s:
        return True
    lock_host, _, pid = lock.rpartition(":")
    if lock_host != (host or socket.gethostname()) or not pid.isdigit():
        return False  # another host: only the tick can tell
    return not _process_alive(int(pid))


def release_dead_locks(db: Any, workflow: str | None = None, stale_after_s: float = 180.0) -> int:
    """Unlock jobs whose lock owner is dead; ``RUNNING`` ones become ``RESTART_READY``. Returns the count."""
    from django.db.models import Value
    from django.db.models.functions import Concat
    from django.utils import timezone

    BalsamJob = db.BalsamJob
    now = timezone.now()
    qs = BalsamJob.objects.exclude(lock="")
    if workflow:
        qs = qs.filter(workflow=workflow)
    dead = [
        pk for pk, lock, tick in qs.values_list("pk", "lock", "tick")
        if lock_is_dead(lock, (now - tick).total_seconds() if tick else 1e9, stale_after_s)
    ]
    if not dead:
        return 0
    line = db.models.history_line("RESTART_READY", "hpcnas: the launcher holding this job is gone")
    with db.transaction.atomic():
        jobs = db.models.safe_select(BalsamJob.objects.filter(pk__in=dead))
        jobs.filter(state="RUNNING").update(
            state="RESTART_READY", lock="", state_history=Concat("state_history", Value(line))
        )
        jobs.update(lock="")
    return len(dead)


__all__ = ["lock_is_dead", "release_dead_locks"]
