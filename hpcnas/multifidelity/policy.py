"""The contract of multi-fidelity stopping policies (successive halving, Hyperband, ASHA, PASHA).

A run function reports intermediate objectives (``report(step, objective)``, e.g. once per
epoch; ``step`` is the resource spent so far). Each report is handed to a
:class:`StoppingPolicy`, which answers with a :class:`Decision`:

* ``CONTINUE`` -- keep training;
* ``STOP`` -- stop now; the evaluation ends with status ``STOPPED`` and its last reported
  objective;
* ``FINISH`` -- stop now because the trial is complete at the current maximum resource
  (PASHA); the evaluation ends with status ``DONE`` and its last reported objective;
* ``WAIT`` -- (synchronous policies only) the decision needs reports of other trials first;
  ask again later with :meth:`StoppingPolicy.poll`.

Resources are organised in *rungs*: ``min_resource * reduction_factor**k`` for ``k = 0, 1, ...``
up to ``max_resource`` (always the last rung). Decisions happen when a trial's reported step
first reaches a rung. A policy is a pure in-memory object: it never sleeps, reads clocks or
does I/O, so the same object is driven by the in-process simulator (:mod:`.simulate`), by the
master's policy server (:mod:`.server`) or by tests.

Public ``report``/``poll``/``end`` validate and keep the learning curves; subclasses implement
``_report`` (and ``_poll``/``_end`` when they keep extra state). Policies register with
:func:`register_policy` so searches and the CLI build them by name.
"""
from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from typing import Any, Callable, Hashable

from hpcnas.core.errors import UsageError

TrialId = Hashable
#: most rungs a policy accepts (3**1000 already exceeds any resource)
MAX_RUNGS = 1000


class Decision(str, enum.Enum):
    CONTINUE = "continue"
    STOP = "stop"
    WAIT = "wait"
    FINISH = "finish"


def rung_levels(min_resource: float, max_resource: float, reduction_factor: float) -> list[float]:
    """Rung resources ``min * eta**k`` below ``max``, then ``max`` itself (always last).

    >>> rung_levels(1, 27, 3)
    [1, 3, 9, 27]
    >>> rung_levels(1, 20, 3)
    [1, 3, 9, 20]
    """
    check_resources(min_resource, max_resource, reduction_factor)
    levels: list[float] = []
    level = min_resource
    while level < max_resource * (1 - 1e-9):
        levels.append(level)
        level = level * reduction_factor
        if isinstance(min_resource, int) and isinstance(reduction_factor, int):
            level = int(level)
    levels.append(max_resource)
    return levels


def check_resources(min_resource: float, max_resource: float, reduction_factor: float) -> None:
    for option, value in (("--min-resource", min_resource), ("--max-resource", max_resource),
                          ("--reduction-factor", reduction_factor)):
        if isinstance(value, (int, float)) and not math.isfinite(value):  # inf: endless rungs, nan: no order
            raise UsageError(f"{option} must be a finite number, got {value!r}: give the resource a run "
                             "function trains up to, e.g. --max-resource 27 (epochs)")
    if not (isinstance(min_resource, (int, float)) and min_resource > 0):
        raise UsageError(f"--min-resource must be a positive number, got {min_resource!r}")
    if not (isinstance(max_resource, (int, float)) and max_resource >= min_resource):
        raise UsageError(
            f"--max-resource ({max_resource!r}) must be a number >= --min-resource ({min_resource!r})"
        )
    if not (isinstance(reduction_factor, (int, float)) and reduction_factor > 1):
        raise UsageError(f"--reduction-factor must be > 1 (typically 3), got {reduction_factor!r}")
    count = math.log(max_resource / min_resource) / math.log(reduction_factor) if max_resource > min_resource else 0
    if count > MAX_RUNGS:
        raise UsageError(
            f"--min-resource {min_resource!r}, --max-resource {max_resource!r} and --reduction-factor "
            f"{reduction_factor!r} make {math.ceil(count) + 1} rungs (at most {MAX_RUNGS}): use a factor like 3"
        )


def top_count(n: int, reduction_factor: float) -> int:
    """How many of ``n`` trials at a rung are in its top ``1/reduction_factor`` (at least 1)."""
    return max(1, math.ceil(n / reduction_factor - 1e-12)) if n > 0 else 0


def rank_of(value: float, values: Any) -> int:
    """1-based rank of ``value`` among ``values`` (maximisation; ties share the best rank)."""
    return 1 + sum(1 for v in values if v > value)


_REGISTRY: dict[str, type["StoppingPolicy"]] = {}


def register_policy(name: str) -> Callable[[type["StoppingPolicy"]], type["StoppingPolicy"]]:
    def deco(cls: type[StoppingPolicy]) -> type[StoppingPolicy]:
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def policy_names() -> list[str]:
    _import_builtin()
    return sorted(_REGISTRY)


def create_policy(name: str, **options: Any) -> "StoppingPolicy":
    _import_builtin()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown scheduler '{name}': choose one of {', '.join(policy_names())}") from None
    return cls(**options)


def _import_builtin() -> None:
    from hpcnas.multifidelity import asha, hyperband, pasha, successive_halving  # noqa: F401


class StoppingPolicy(ABC):
    """Base class of multi-fidelity schedulers (see the module docstring for the contract)."""

    name = "policy"

    def __init__(self, min_resource: float = 1, max_resource: float = 27, reduction_factor: float = 3) -> None:
        self.rungs = rung_levels(min_resource, max_resource, reduction_factor)
        self.min_resource = min_resource
        self.max_resource = max_resource
        self.reduction_factor = reduction_factor
        #: learning curve of every trial: list of (step, objective), oldest first
        self.curves: dict[TrialId, list[tuple[float, float]]] = {}
        #: objective of each trial at each rung index it reached
        self.rung_values: dict[TrialId, dict[int, float]] = {}
        self.ended: set[TrialId] = set()
        self.stopped: set[TrialId] = set()

    # ----------------------------------------------------------------- public API
    def report(self, trial_id: TrialId, step: float, objective: float) -> Decision:
        """Record ``objective`` after ``step`` resource and decide whether the trial goes on."""
        step = float(step)
        objective = float(objective)
        if not math.isfinite(objective):
            self.end(trial_id)
            return Decision.STOP
        curve = self.curves.setdefault(trial_id, [])
        if curve and step < curve[-1][0]:
            raise UsageError(f"report() steps must not decrease: got {step} after {curve[-1][0]}")
        curve.append((step, objective))
        decision = self._report(trial_id, step, objective)
        if decision in (Decision.STOP, Decision.FINISH):
            self.stopped.add(trial_id)
        return decision

    def poll(self, trial_id: TrialId) -> Decision:
        """Ask again for a trial whose last answer was ``WAIT``."""
        decision = self._poll(trial_id)
        if decision == Decision.STOP:
            self.stopped.add(trial_id)
        return decision

    def end(self, trial_id: TrialId) -> None:
        """The trial's evaluation is over (finished, failed, crashed or stopped)."""
        if trial_id not in self.ended:
            self.ended.add(trial_id)
            self._end(trial_id)

    def new_rungs(self, trial_id: TrialId, step: float) -> list[int]:
        """Indices of rungs that ``step`` reaches and the trial has no value for yet."""
        seen = self.rung_values.get(trial_id, {})
        return [k for k, level in enumerate(self.rungs) if step >= level - 1e-9 and k not in seen]

    def resource_used(self, trial_id: TrialId | None = None) -> float:
        """Resource consumed (largest reported step) by one trial, or by all trials."""
        if trial_id is not None:
            curve = self.curves.get(trial_id)
            return curve[-1][0] if curve else 0.0
        return float(sum(c[-1][0] for c in self.curves.values() if c))

    @property
    def top_rung(self) -> int:
        """Index of the highest rung a trial may reach now (PASHA grows it)."""
        return len(self.rungs) - 1

    def best(self) -> tuple[TrialId, float, float] | None:
        """``(trial, objective, resource)`` of the best trial at the highest rung reached."""
        for k in range(len(self.rungs) - 1, -1, -1):
            at_k = {t: v[k] for t, v in self.rung_values.items() if k in v}
            if at_k:
                trial = max(at_k, key=lambda t: at_k[t])
                return trial, at_k[trial], self.rungs[k]
        return None

    def state(self) -> dict[str, Any]:
        """A JSON-safe summary for logs."""
        best = self.best()
        return {
            "policy": self.name,
            "rungs": self.rungs,
            "top_rung": self.rungs[self.top_rung],
            "trials": len(self.curves),
            "resource_used": self.resource_used(),
            "best": None if best is None else {"objective": best[1], "resource": best[2]},
        }

    # ----------------------------------------------------------------- backend
    def _record(self, trial_id: TrialId, k: int, objective: float) -> None:
        self.rung_values.setdefault(trial_id, {})[k] = objective

    @abstractmethod
    def _report(self, trial_id: TrialId, step: float, objective: float) -> Decision:
        """Decide on a new report (the curve is already updated)."""

    def _poll(self, trial_id: TrialId) -> Decision:
        return Decision.CONTINUE

    def _end(self, trial_id: TrialId) -> None:
        """Forget pending waits of an ended trial (synchronous policies)."""
