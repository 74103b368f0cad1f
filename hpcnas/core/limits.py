"""Bounds of the numbers a user gives: time limits, worker counts and seeds.

One owner for each rule and its message, used by the CLI (to refuse before anything starts)
and by the API (:class:`~hpcnas.evaluator.base.Evaluator`,
:class:`~hpcnas.search.master.SearchMaster`, :class:`~hpcnas.search.base.Search`).

* A time limit (``--timeout``, ``--eval-timeout``) is positive seconds up to a year;
  ``inf`` means no limit, like leaving it out. Longer finite values are refused: no run lasts
  that long, and such numbers overflow the operating system's waits and Balsam's wall times.
* ``--num-workers`` is at least 1 and at most :data:`MAX_NUM_WORKERS` (a backend may set a
  lower bound of its own, as the local evaluator does from the open-file limit).
* A seed is an integer >= 0 (numpy's generators refuse negative seeds).
* An integer option of a search or evaluator plug-in (a count: population size, nodes per
  evaluation, bytes of output) is at most :data:`MAX_COUNT`; bigger numbers overflow C integers
  (``deque(maxlen=...)``, database columns) far from the command line.
"""
from __future__ import annotations

import argparse
import math
import numbers
from typing import Any

from hpcnas.core.errors import UsageError

#: the longest finite time limit, in seconds (a year)
MAX_SECONDS = 365 * 24 * 3600
#: the largest value of a plug-in's integer option (a C int)
MAX_COUNT = 2**31 - 1
#: the most parallel evaluations one search master drives (more than any machine's nodes x GPUs)
MAX_NUM_WORKERS = 1_000_000


def time_limit(value: Any, option: str) -> float | None:
    """``value`` as a time limit in seconds, ``None`` for no limit (``None`` or ``inf``).

    Raises :class:`UsageError` (naming ``option``) for anything but a positive number of seconds
    up to :data:`MAX_SECONDS` or ``inf``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        raise UsageError(f"{option} must be positive seconds, got {value}")
    value = float(value)
    if math.isinf(value):
        return None
    if value > MAX_SECONDS:
        raise UsageError(
            f"{option} {float(value):g} s is more than a year: give at most {MAX_SECONDS} seconds, "
            "or inf (or leave it out) for no limit"
        )
    return float(value)


def check_num_workers(value: Any, option: str = "--num-workers") -> None:
    """Raise :class:`UsageError` unless ``value`` is ``None`` or an integer from 1 to :data:`MAX_NUM_WORKERS`."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise UsageError(f"{option} must be at least 1, got {value}")
    if int(value) > MAX_NUM_WORKERS:
        raise UsageError(
            f"{option} {value} is more than {MAX_NUM_WORKERS}: give the number of evaluations to run at once"
        )


def check_seed(value: Any, option: str = "--seed") -> None:
    """Raise :class:`UsageError` when ``value`` is a negative integer (other seeds are numpy's to judge)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value < 0:
        raise UsageError(f"{option} must be an integer >= 0, got {value}")


def bounded_int(text: str) -> int:
    """``argparse`` type of plug-in integer options: ``int(text)``, refusing more than :data:`MAX_COUNT`."""
    value = int(text)
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{value} is too large: give at most {MAX_COUNT}")
    return value


bounded_int.__name__ = "int"  # argparse names the type in "invalid int value: 'x'"
