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
from dataclasses import dataclass

_BUILT = re.compile(r"Built (\d+) \w+ workers")
_STAMP = re.compile(r"^(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d)\|", re.M)
_STAMP_FORMAT = "%d-%b-%Y %H:%M:%S"


def _read(db_path: str) -> list[tuple[str, str]]:
    """``(path, text)`` of every launcher log of the DB."""
    logs = []
    for path in sorted(glob.glob(os.path.join(db_path, "log", "launcher*.log"))):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                logs.append((path, fh.read()))
        except OSError:
            continue
    return logs


def _counting(logs: list[tuple[str, str]], workflow: str | None, pattern: re.Pattern[str]) -> list[str]:
    """The texts of ``logs`` with a match of ``pattern`` that count for ``workflow``."""
    found = [(text, bool(workflow) and names_workflow(text, workflow or "")) for _path, text in logs
             if pattern.search(text)]
    if workflow and any(mine for _text, mine in found):
        found = [entry for entry in found if entry[1]]
    return [text for text, _mine in found]


def names_workflow(text: str, workflow: str) -> bool:
    return any(mark in text for mark in (f"--wf-name={workflow}", f"/data/{workflow}/",
                                         f"wf_filter={workflow}", f"--wf-filter {workflow}",
                                         f"--wf-filter={workflow}"))


def _epoch(stamp: str) -> float:
    """A log stamp in the seconds :func:`hpcnas.analytics.balsam_db.parse_state_history` uses
    (the naive local time read as UTC, as Balsam writes both)."""
    return float(calendar.timegm(time.strptime(stamp, _STAMP_FORMAT)))


@dataclass(frozen=True)
class LauncherLogs:
    """What the launcher logs that count for a workflow say, read in one pass over the files."""

    #: largest ``Built N ... workers`` of those logs, or None
    nodes: int | None
    #: ``(first line, last line)`` of each log, in time order: when each launcher ran (to the
    #: second; a launcher still running ends at its latest line)
    lifetimes: list[tuple[float, float]]


def read_launcher_logs(db_path: str, workflow: str | None = None) -> LauncherLogs:
    """The node count and the lifetimes of the launchers of ``workflow`` (every launcher: None)."""
    logs = _read(db_path)
    built = [int(m.group(1)) for text in _counting(logs, workflow, _BUILT) for m in _BUILT.finditer(text)]
    spans = []
    for text in _counting(logs, workflow, _STAMP):
        stamps = _STAMP.findall(text)
        spans.append((_epoch(stamps[0]), _epoch(stamps[-1])))
    return LauncherLogs(nodes=max(built, default=None) or None, lifetimes=sorted(spans))


def launcher_nodes_from_logs(db_path: str, workflow: str | None = None) -> int | None:
    """Largest ``Built N ... workers`` in the launcher logs that count, or None."""
    return read_launcher_logs(db_path, workflow).nodes


def launcher_lifetimes(db_path: str, workflow: str | None = None) -> list[tuple[float, float]]:
    """When each launcher that counts ran (:attr:`LauncherLogs.lifetimes`)."""
    return read_launcher_logs(db_path, workflow).lifetimes


__all__ = ["LauncherLogs", "launcher_lifetimes", "launcher_nodes_from_logs", "names_workflow", "read_launcher_logs"]
