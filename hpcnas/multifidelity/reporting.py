"""Intermediate reports from inside a run function, and early stopping.

A run function calls :func:`report` (also ``hpcnas.report``) after each unit of resource::

    from hpcnas import report

    def run(config):
        model = build(config)
        for epoch in range(1, 28):
            score = train_one_epoch(model)
            report(epoch, score)      # may raise StopEvaluation: do not catch it
        return score

Every backend evaluates a configuration through :func:`hpcnas.evaluator.runner.run_config`,
which opens a :class:`Channel` for the evaluation (:func:`open_channel`). The channel keeps
the reports (they come back as ``EvalResult.reports``) and, when a stopping policy serves this
search (environment variables ``HPCNAS_MF_ADDRESS`` and ``HPCNAS_MF_AUTHKEY``: a multi-fidelity
search's ``evaluation_env()``, handed by the master to the evaluator, which carries them to the
run side), asks it after each report
whether to go on. A ``STOP`` answer raises :class:`StopEvaluation` (a ``BaseException``, so
``except Exception`` in user code does not swallow it); the evaluation then ends with status
``STOPPED`` and its last reported objective (``DONE`` when the answer is ``FINISH``: complete at
the scheduler's current maximum resource). A ``WAIT`` answer (synchronous successive
halving) blocks ``report`` until the policy decides.

Outside an evaluation (a run function called by hand), :func:`report` only validates.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from hpcnas.core.errors import HpcnasError
from hpcnas.core.trial import Outcome, decide
from hpcnas.multifidelity import protocol
from hpcnas.multifidelity.protocol import ADDRESS_ENV, AUTHKEY_ENV, parse_address, request

Decider = Callable[[str, tuple], str]


class StopEvaluation(BaseException):
    """Raised inside ``report`` when the scheduler stops this evaluation early."""


class Channel:
    """Per-evaluation report channel (see the module docstring).

    ``decider(kind, payload) -> "continue" | "stop" | "wait"`` asks the policy; ``None``
    records reports without ever stopping.
    """

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        decider: Decider | None = None,
        trial_id: str | None = None,
        poll_interval: float = 0.1,
    ) -> None:
        self.config = dict(config or {})
        self.decider = decider
        self.trial_id = trial_id or uuid.uuid4().hex
        self.poll_interval = poll_interval
        self.reports: list[tuple[float, float]] = []
        self.stopped = False
        #: stopped because the trial is complete at the scheduler's current maximum resource
        self.finished = False
        #: a broken scheduler setting (bad address): the evaluation fails with this message
        self.setup_error: str | None = None

    def report(self, step: float, objective: float) -> None:
        try:
            step = float(step)
            objective = float(objective)
        except (TypeError, ValueError):
            raise HpcnasError(
                f"report(step, objective) needs two numbers, got step={step!r}, objective={objective!r}"
            ) from None
        if self.reports and step < self.reports[-1][0]:
            raise HpcnasError(f"report() steps must not decrease: got {step} after {self.reports[-1][0]}")
        self.reports.append((step, objective))
        if self.decider is None or self.stopped:
            return
        if not math.isfinite(objective):
            return  # a NaN report is kept; the final objective decides the failure
        decision = self.decider(protocol.REPORT, (self.trial_id, self.config, step, objective))
        while decision == "wait":
            time.sleep(self.poll_interval)
            decision = self.decider(protocol.POLL, (self.trial_id,))
        if decision in ("stop", "finish"):
            self.stopped = True
            self.finished = decision == "finish"
            raise StopEvaluation(f"stopped by the scheduler after step {step:g}")

    def finish(self, outcome: Outcome) -> Outcome:
        """Attach reports to a runner ``Outcome``; a stopped evaluation becomes ``STOPPED``."""
        outcome.reports = list(self.reports)
        if self.setup_error:
            outcome.status, outcome.objective, outcome.error = decide(self.setup_error), None, self.setup_error
        elif self.stopped:
            finite = [y for _, y in self.reports if math.isfinite(y)]
            outcome.status = decide(stopped=True, complete=self.finished and bool(finite))
            outcome.objective = finite[-1] if finite else None
            outcome.error = None
        if self.decider is not None:
            self.decider(protocol.END, (self.trial_id,))
        return outcome


class _Stack(threading.local):
    """Open channels of this thread: evaluations run in threads (a test, a threaded backend)
    must not report into one another's channel."""

    def __init__(self) -> None:
        self.channels: list[Channel] = []


_CURRENT = _Stack()


def current_channel() -> Channel | None:
    """The channel of the evaluation running in this process, if any."""
    return _CURRENT.channels[-1] if _CURRENT.channels else None


def report(step: float, objective: float) -> None:
    """Report ``objective`` (maximised) after ``step`` units of resource; may stop the run.

    Raises :class:`StopEvaluation` when the scheduler stops this evaluation: let it
    propagate (cleanup in ``finally`` blocks still runs).
    """
    channel = current_channel()
    if channel is None:
        Channel().report(step, objective)  # validation only
        return
    channel.report(step, objective)


@contextmanager
def open_channel(config: dict[str, Any], env: Mapping[str, str] | None = None,
                 trial_id: str | None = None) -> Iterator[Channel]:
    """Activate a channel for one evaluation; a policy server is used when ``env`` (default: this
    process's environment) names one. ``trial_id``: the evaluation's job id, the trial's name at
    the policy server (a fresh id when the backend gives none)."""
    env = os.environ if env is None else env
    try:
        decider = remote_decider(env.get(ADDRESS_ENV, ""), env.get(AUTHKEY_ENV, ""))
        setup_error = None
    except HpcnasError as err:
        decider, setup_error = None, str(err)
    channel = Channel(config, decider, trial_id=trial_id)
    channel.setup_error = setup_error
    _CURRENT.channels.append(channel)
    try:
        yield channel
    finally:
        _CURRENT.channels.remove(channel)


def remote_decider(address: str, authkey: str) -> Decider | None:
    """A decider that asks the policy server at ``host:port`` (``None`` when no address)."""
    if not address:
        return None
    host, port = parse_address(address)
    key = bytes.fromhex(authkey) if authkey else b""
    warned: list[bool] = []

    def decide(kind: str, payload: tuple) -> str:
        from multiprocessing import AuthenticationError

        try:
            return request(host, port, key, kind, payload)
        except (OSError, EOFError, AuthenticationError) as err:
            if not warned:
                warned.append(True)
                print(f"hpcnas: scheduler at {address} unreachable ({err}); evaluation goes on", file=sys.stderr)
            return "continue"

    return decide
