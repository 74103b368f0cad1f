"""Search quality on polynome2 with 4 asynchronous workers (each test < 1 minute).

The default AMBS (RF surrogate) is checked at full size (10 dims, 200 evaluations, as
``benchmarks/search_quality.py``); the slower GP surrogate on a reduced size.
"""
from __future__ import annotations

import numpy as np
import pytest

from hpcnas.benchmark import polynome2
from hpcnas.benchmark.simulate import best_so_far, simulate_async
from hpcnas.search import get_search_class

WORKERS, SEEDS = 4, range(5)


def _bests(name: str, dims: int, evals: int, **options) -> np.ndarray:
    problem = polynome2.build(dims)
    out = []
    for seed in SEEDS:
        search = get_search_class("hps", name)(problem, random_state=seed, **options)
        out.append(best_so_far(simulate_async(search, polynome2.run, evals, WORKERS, seed))[-1])
    return np.array(out)


@pytest.mark.parametrize("surrogate, dims, evals", [("RF", 10, 200), ("GP", 2, 50)])
def test_ambs_reaches_near_optimum_and_beats_random(surrogate, dims, evals):
    ambs = _bests("ambs", dims, evals, surrogate_model=surrogate)
    rand = _bests("random", dims, evals)
    assert (ambs > -1.0).sum() >= 4, f"AMBS bests per seed {ambs}"
    assert np.median(ambs) > np.median(rand), f"AMBS {ambs} vs random {rand}"


def test_simulator_keeps_workers_busy_and_counts():
    search = get_search_class("hps", "random")(polynome2.build(2), random_state=0)
    told = simulate_async(search, polynome2.run, 17, 4, 0)
    assert len(told) == 17 and search.num_asked == 17 and search.num_told == 17
    trajectory = best_so_far(told)
    assert np.all(np.diff(trajectory) >= 0) and trajectory[-1] == max(y for _, y in told)
