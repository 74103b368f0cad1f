"""One run of one method on one problem: an asynchronous loop with simulated workers.

``num_workers`` evaluations are in flight at once; the one that finishes first (durations
exponential with mean 1, seeded by the run's seed, the same for every method) is told and a
new configuration is asked for its worker. With one worker this is the plain sequential
loop. Only the method's own ``ask``/``tell`` calls are timed (CPU time of this process), so
``cpu_ms_per_eval`` is the method's overhead, not the objective's.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from benchmarks.suite.methods import METHODS
from benchmarks.suite.problems import get_problem


@dataclass
class RunResult:
    problem: str
    method: str
    seed: int
    workers: int
    evals: int
    regret: list[float]  # best true regret after each evaluation (running minimum)
    cpu_s: float
    failed: str = ""
    options: dict[str, Any] | None = None  # ambs settings other than the defaults (--ambs-option)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: the keys every line of a file of suite runs holds (``options`` may be missing from old files)
RUN_KEYS = frozenset(f.name for f in fields(RunResult)) - {"options"}


def run_one(problem_name: str, method: str, seed: int, workers: int, evals: int,
            options: dict[str, Any] | None = None) -> RunResult:
    from benchmarks.suite import methods

    methods.AMBS_OPTIONS.clear()
    methods.AMBS_OPTIONS.update(options or {})
    options = dict(options) if options and method == "ambs" else None
    problem = get_problem(problem_name)
    factory, _ = METHODS[method]
    rng = np.random.default_rng([seed, 17])  # durations and noise: the same stream for every method
    cpu = 0.0
    regrets: list[float] = []
    t0 = time.process_time()
    try:
        search = factory(problem.space, seed)
    except Exception as err:  # noqa: BLE001 - a bad setting is reported like a crash
        return RunResult(problem_name, method, seed, workers, 0, [], 0.0, f"{type(err).__name__}: {err}", options)
    cpu += time.process_time() - t0
    running: list[tuple[float, int, int, dict[str, Any]]] = []
    serial = 0

    def launch(now: float) -> None:
        nonlocal cpu, serial
        t = time.process_time()
        token, config = search.ask()
        cpu += time.process_time() - t
        heapq.heappush(running, (now + float(rng.exponential(1.0)), serial, token, config))
        serial += 1

    try:
        for _ in range(min(workers, evals)):
            launch(0.0)
        asked = len(running)
        best = np.inf
        while running:
            now, _, token, config = heapq.heappop(running)
            observed = problem.observe(config, rng)
            best = min(best, problem.regret(config))
            regrets.append(best)
            t = time.process_time()
            search.tell(token, -observed)
            cpu += time.process_time() - t
            if asked < evals:
                launch(now)
                asked += 1
    except Exception as err:  # noqa: BLE001 - a peer's crash is reported, not fatal to the suite
        return RunResult(problem_name, method, seed, workers, len(regrets), regrets, cpu,
                         f"{type(err).__name__}: {err}", options)
    return RunResult(problem_name, method, seed, workers, len(regrets), regrets, cpu, "", options)


def run_task(task: tuple[Any, ...]) -> dict[str, Any]:
    return run_one(*task).to_json()
