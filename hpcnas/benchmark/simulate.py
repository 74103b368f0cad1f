"""In-process simulation of an asynchronous search with ``num_workers`` workers.

:func:`simulate_async` drives any :class:`~hpcnas.search.base.Search` the way an evaluator
with ``num_workers`` slots does: it asks one configuration per worker, then repeatedly lets
the evaluation that finishes first (random durations, exponential with mean 1, seeded) be
told and asks one new configuration for the freed worker, until ``max_evals`` results have
been told. No time is spent: durations are only used to order completions.
"""
from __future__ import annotations

import heapq
from typing import Any, Callable

import numpy as np

from hpcnas.search.base import Search


def simulate_async(
    search: Search,
    run: Callable[[dict[str, Any]], float | None],
    max_evals: int,
    num_workers: int = 4,
    seed: int | None = 0,
) -> list[tuple[dict[str, Any], float | None]]:
    """Run the search; return the told ``(config, objective)`` pairs in completion order."""
    rng = np.random.default_rng(seed)
    clock = 0.0
    running: list[tuple[float, int, dict[str, Any]]] = []
    serial = 0

    def launch(configs: list[dict[str, Any]], now: float) -> None:
        nonlocal serial
        for config in configs:
            heapq.heappush(running, (now + float(rng.exponential(1.0)), serial, config))
            serial += 1

    launch(search.ask(min(num_workers, max_evals)), clock)
    asked = len(running)
    told: list[tuple[dict[str, Any], float | None]] = []
    while running:
        clock, _, config = heapq.heappop(running)
        result = (config, run(config))
        search.tell([result])
        told.append(result)
        if asked < max_evals:
            launch(search.ask(1), clock)
            asked += 1
    return told


def best_so_far(told: list[tuple[dict[str, Any], float | None]]) -> np.ndarray:
    """Running maximum of the objectives (failed evaluations count as -inf)."""
    values = np.array([-np.inf if y is None else y for _, y in told], dtype=float)
    return np.maximum.accumulate(values)
