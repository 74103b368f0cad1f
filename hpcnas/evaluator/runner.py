"""Run one configuration in the current process and judge what the run function returned.

Every backend ends up here, in whatever process it gives the evaluation (a local worker
process, a Balsam job, a Ray task): :func:`run_config` imports the run function, calls it
on the configuration and turns the outcome into an :class:`Outcome`. Exceptions (including
``SystemExit``) and return values that are not finite numbers become ``FAILED`` outcomes
with the error text; isolation from crashes that kill the process (segfault, ``os._exit``)
and timeouts are the backend's job.

A run function returns a number (maximised), or a dict with an ``"objective"`` key
(other keys, and the items of a ``"metadata"`` dict, are kept: ``m:<key>`` columns of results.csv).
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from hpcnas.core.loading import load_attribute
from hpcnas.evaluator.base import DONE, FAILED, METADATA_KEY

RunFunction = Callable[[dict[str, Any]], Any]


@dataclass
class Outcome:
    objective: float | None
    status: str
    error: str | None
    start_time: float
    end_time: float
    metadata: dict[str, Any] = field(default_factory=dict)
    #: intermediate ``(step, objective)`` reports (``hpcnas.report``), oldest first
    reports: list[tuple[float, float]] = field(default_factory=list)


def resolve_run_function(run_function: str | RunFunction) -> RunFunction:
    """Import a dotted-path run function (or pass a callable through) and check it is callable."""
    func = load_attribute(run_function, "run function") if isinstance(run_function, str) else run_function
    if not callable(func):
        from hpcnas.core.errors import HpcnasError

        raise HpcnasError(f"run function '{run_function}' is not callable: define def run(config): ...")
    _check_signature(func, run_function)
    return func


def _check_signature(func: Any, run_function: Any) -> None:
    """A run function must accept exactly one positional argument (the configuration)."""
    import inspect

    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins and C callables: nothing to check
        return
    try:
        signature.bind({})
    except TypeError:
        from hpcnas.core.errors import HpcnasError

        name = run_function if isinstance(run_function, str) else getattr(func, "__qualname__", repr(func))
        raise HpcnasError(
            f"run function '{name}' has the signature {signature}: it must accept one positional "
            "argument, the configuration: define def run(config): ..."
        ) from None


def user_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """The ``m:`` columns of a returned dict: its ``"metadata"`` dict (DeepHyper 0.13) and its other
    keys, as numbers or text (anything else as its JSON / ``repr`` text)."""
    import json

    items = {k: v for k, v in value.items() if k not in ("objective", "metadata")}
    nested = value.get("metadata")
    if isinstance(nested, dict):
        items.update(nested)
    elif nested is not None:
        items["metadata"] = nested
    out: dict[str, Any] = {}
    for key, item in items.items():
        if item is None or isinstance(item, (bool, int, float, str)):
            out[str(key)] = item
        else:
            try:
                out[str(key)] = json.dumps(item, default=repr)
            except (TypeError, ValueError):
                out[str(key)] = repr(item)
    return out


class Job(dict):
    """The configuration handed to a run function: a ``dict``, which also answers DeepHyper 0.13's
    ``run(job)`` idioms ``job.parameters`` and ``job["x"]``."""

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self)


def judge(value: Any) -> tuple[float | None, str | None, dict[str, Any]]:
    """Turn a run function's return value into ``(objective, error, metadata)``.

    A string starting with ``"F"`` (DeepHyper's ``"F_reason"``) is a failure with that reason."""
    metadata: dict[str, Any] = {}
    if isinstance(value, dict):
        metadata = {k: v for k, v in value.items() if k != "objective"}
        metadata[METADATA_KEY] = user_metadata(value)
        if "objective" not in value:
            return None, "run function returned a dict without an 'objective' key", metadata
        value = value["objective"]
    if isinstance(value, str) and value.startswith("F"):
        return None, f"run function reported a failure: {value[:200]}", metadata
    if value is None:
        return None, "run function returned None; it must return a number to maximise", metadata
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        return None, f"run function returned {type(value).__name__} {value!r:.80}, not a number", metadata
    try:
        objective = float(value)
    except (TypeError, ValueError) as err:
        return None, f"run function returned {value!r:.80}, not a number ({err})", metadata
    if not math.isfinite(objective):
        return None, f"run function returned a non-finite objective ({objective})", metadata
    return objective, None, metadata


def run_config(run_function: str | RunFunction, config: dict[str, Any]) -> Outcome:
    """Evaluate ``config`` in this process; never raises for faults of the run function.

    The evaluation gets a multi-fidelity report channel (:mod:`hpcnas.multifidelity.reporting`):
    ``Outcome.reports`` holds its ``report(step, objective)`` calls, and an evaluation stopped by
    the scheduler has status ``STOPPED`` with its last reported objective.
    """
    from hpcnas.multifidelity.reporting import open_channel

    with open_channel(config) as channel:
        outcome = _run_config(run_function, config)
    return channel.finish(outcome)


def _run_config(run_function: str | RunFunction, config: dict[str, Any]) -> Outcome:
    start = time.time()
    try:
        func = resolve_run_function(run_function)
        value = func(Job(config))
    except BaseException as err:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from user code too
        if isinstance(err, KeyboardInterrupt):
            raise
        tail = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-3:])
        return Outcome(None, FAILED, f"{type(err).__name__}: {err} ({tail.strip()[-400:]})", start, time.time())
    objective, error, metadata = judge(value)
    return Outcome(objective, DONE if error is None else FAILED, error, start, time.time(), metadata)
