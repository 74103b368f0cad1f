"""Drive a stopping policy in-process on learning curves, with simulated parallel workers.

:func:`simulate` replays what the master and ``num_workers`` evaluations would do, with a
virtual clock instead of real time: each trial spends ``step_cost`` time units per unit of
resource and reports its objective after each unit; the policy answers as it would through
the policy server. It is deterministic, takes milliseconds, and serves unit tests (exact
promotion decisions on small examples) and benchmarks (``benchmarks/pasha_vs_asha.py``).
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hpcnas.multifidelity.policy import Decision, StoppingPolicy

#: ``curve(step) -> objective`` for one trial
Curve = Callable[[int], float]


@dataclass
class TrialRecord:
    trial: int
    config: Any
    reports: list[tuple[int, float]] = field(default_factory=list)
    status: str = "running"  # running | waiting | stopped | finished
    start_time: float = 0.0
    end_time: float | None = None

    @property
    def resource(self) -> int:
        return self.reports[-1][0] if self.reports else 0

    @property
    def objective(self) -> float | None:
        return self.reports[-1][1] if self.reports else None


@dataclass
class SimulationResult:
    trials: list[TrialRecord]
    best: tuple[int, float, float] | None
    total_resource: float
    makespan: float
    policy: StoppingPolicy

    @property
    def best_config(self) -> Any:
        return None if self.best is None else self.trials[self.best[0]].config


def simulate(
    policy: StoppingPolicy,
    configs: Sequence[Any],
    curve_of: Callable[[Any], Curve],
    num_workers: int = 4,
    step_cost: float | Callable[[Any], float] = 1.0,
    max_steps: int | None = None,
) -> SimulationResult:
    """Run every configuration of ``configs`` (in order, as workers free up) under ``policy``.

    ``curve_of(config)`` returns the trial's learning curve; it is evaluated at steps
    ``1, 2, ...`` up to ``max_steps`` (default: the policy's ``max_resource``) unless the
    policy stops the trial first. Trials waiting at a synchronous barrier hold their worker;
    when every busy worker waits and no other progress is possible, ``policy.release()``
    decides the barriers on the members present.
    """
    limit = int(max_steps if max_steps is not None else math.ceil(policy.max_resource))
    cost = step_cost if callable(step_cost) else (lambda _c, _v=float(step_cost): _v)
    records: list[TrialRecord] = []
    curves: list[Curve] = []
    events: list[tuple[float, int, int]] = []  # (time, sequence, trial)
    waiting: list[int] = []
    seq = 0
    now = 0.0
    next_config = 0
    busy = 0

    def start(time: float) -> None:
        nonlocal next_config, busy, seq
        while busy < num_workers and next_config < len(configs):
            config = configs[next_config]
            record = TrialRecord(len(records), config, start_time=time)
            records.append(record)
            curves.append(curve_of(config))
            heapq.heappush(events, (time + cost(config), seq, record.trial))
            seq += 1
            next_config += 1
            busy += 1

    def finish(record: TrialRecord, status: str, time: float) -> None:
        nonlocal busy
        record.status = status
        record.end_time = time
        policy.end(record.trial)
        busy -= 1

    def resume(record: TrialRecord, decision: Decision, time: float) -> None:
        nonlocal seq
        if decision == Decision.STOP:
            finish(record, "stopped", time)
        elif decision == Decision.FINISH:
            finish(record, "finished", time)
        elif decision == Decision.WAIT:
            record.status = "waiting"
            waiting.append(record.trial)
        elif record.resource >= limit:
            finish(record, "finished", time)
        else:
            record.status = "running"
            heapq.heappush(events, (time + cost(record.config), seq, record.trial))
            seq += 1

    start(now)
    while events or waiting:
        if events:
            now, _, trial = heapq.heappop(events)
            record = records[trial]
            step = record.resource + 1
            value = float(curves[trial](step))
            record.reports.append((step, value))
            resume(record, policy.report(trial, step, value), now)
        elif waiting:
            release = getattr(policy, "release", None)
            if release is None:
                raise RuntimeError(f"policy {policy.name} answered WAIT but cannot release barriers")
            release()
        for trial in list(waiting):
            decision = policy.poll(trial)
            if decision != Decision.WAIT:
                waiting.remove(trial)
                resume(records[trial], decision, now)
        start(now)
    return SimulationResult(records, policy.best(), policy.resource_used(), now, policy)
