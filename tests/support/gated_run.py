"""A run function that finishes only when the test lets it: a search provably still in progress.

The gate is the directory ``$HPCNAS_TEST_GATE``. Each evaluation takes the next ticket (the
files ``ticket-0``, ``ticket-1``, ... created exclusively, in the order evaluations start) and
returns once the number in ``allowed`` is above its ticket. :func:`allow` sets that number; with
``allowed = n`` exactly ``n`` evaluations finish, the others wait.
"""
from __future__ import annotations

import os
import time
from typing import Any

from tests.support.toy import run as toy_run

ENV = "HPCNAS_TEST_GATE"
POLL_S = 0.02
LIMIT_S = 300.0  # an evaluation nobody lets finish fails instead of hanging the test machine


def allow(gate: str, n: int) -> None:
    tmp = os.path.join(gate, "allowed.tmp")
    with open(tmp, "w") as fh:
        fh.write(str(n))
    os.replace(tmp, os.path.join(gate, "allowed"))  # readers see the old or the new number


def _allowed(gate: str) -> int:
    try:
        with open(os.path.join(gate, "allowed")) as fh:
            return int(fh.read() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def run(config: dict[str, Any]) -> float:
    gate = os.environ[ENV]
    ticket = 0
    while True:
        try:
            os.close(os.open(os.path.join(gate, f"ticket-{ticket}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            ticket += 1
    deadline = time.monotonic() + LIMIT_S
    while _allowed(gate) <= ticket:
        if time.monotonic() > deadline:
            raise TimeoutError(f"evaluation {ticket} was never allowed to finish")
        time.sleep(POLL_S)
    return toy_run(config)
