"""What the Balsam launcher logs of a DB say about the allocations: node counts and lifetimes.

Each launcher writes ``<db>/log/launcher_<date>.log``, every line stamped
``DD-Mon-YYYY HH:MM:SS|pid|...``. A log *names* a workflow when it holds its ``--wf-filter``,
the ensemble's ``--wf-name`` or a path of its jobs (``data/<workflow>/``); asked about a
workflow, only the logs that name it count when any does (another workflow's launcher on the
same DB had another allocation), else all of them.
"""
from __future__ import annotations

import calendar
import glob
import os
import re
import time

_BUILT = re.compile(r"Built (\d+) \w+ workers")
_STAMP = re.compile(r"^(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d)\|", re.M)
_STAMP_FORMAT = "%d-%b-%Y %H:%M:%S"


def _logs(db_path: str, workflow: str | None, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """``(path, text)`` of the launcher logs with a match of ``pattern`` that count for ``workflow``."""
    found: list[tuple[str, str, bool]] = []
    for path in sorted(glob.glob(os.path.join(db_path, "log", "launcher*.log"))):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        if pattern.search(text):
            found.append((path, text, bool(workflow) and names_workflow(text, workflow or "")))
    if workflow and any(mine for *_rest, mine in found):
        found = [entry for entry in found if entry[2]]
    return [(path, text) for path, text, _mine in found]


def names_workflow(text: str, workflow: str) -> bool:
    return any(mark in text for mark in (f"--wf-name={workflow}", f"/data/{workflow}/",
                                         f"wf_filter={workflow}", f"--wf-filter {workflow}",
                                         f"--wf-filter={workflow}"))


def launcher_nodes_from_logs(db_path: str, workflow: str | None = None) -> int | None:
    """Largest ``Built N ... workers`` in the launcher logs that count, or None."""
    built = [int(m.group(1)) for _path, text in _logs(db_path, workflow, _BUILT) for m in _BUILT.finditer(text)]
    return max(built, default=None) or None


def _epoch(stamp: str) -> float:
    """A log stamp in the seconds :func:`hpcnas.analytics.balsam_db.parse_state_history` uses
    (the naive local time read as UTC, as Balsam writes both)."""
    return float(calendar.timegm(time.strptime(stamp, _STAMP_FORMAT)))


def launcher_lifetimes(db_path: str, workflow: str | None = None) -> list[tuple[float, float]]:
    """``(first line, last line)`` of each launcher log that counts, in time order: when each
    launcher ran (to the second; a launcher still running ends at its latest line)."""
    spans = []
    for _path, text in _logs(db_path, workflow, _STAMP):
        stamps = _STAMP.findall(text)
        spans.append((_epoch(stamps[0]), _epoch(stamps[-1])))
    return sorted(spans)


__all__ = ["launcher_lifetimes", "launcher_nodes_from_logs", "names_workflow"]
