"""Search quality on polynome2 with 4 asynchronous workers (reduced size, < 1 minute).

Full size (10 dims, 200 evaluations) is ``benchmarks/search_quality.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

from hpcnas.benchmark import polynome2
from hpcnas.benchmark.simulate import best_so_far, simulate_async
from hpcnas.search import get_search_class

DIMS, EVALS, WORKERS, SEEDS = 2, 50, 4, range(5)


def _bests(name: str, **options) -> np.ndarray:
    problem = polynome2.build(DIMS)
    out = []
    for seed in SEEDS:
        search = get_search_class("hps", name)(problem, random_state=seed, **options)
        out.append(best_so_far(simulate_async(search, polynome2.run, EVALS, WORKERS, seed))[-1])
    return np.array(out)


@pytest.mark.parametrize("surrogate", ["RF", "GP"])
def test_ambs_reaches_near_optimum_and_beats_random(surrogate):
    ambs, rand = _bests("ambs", surrogate_model=surrogate), _bests("random")
    assert (ambs > -1.0).sum() >= 4, f"AMBS bests per seed {ambs}"
    assert np.median(ambs) > np.median(rand), f"AMBS {ambs} vs random {rand}"


def test_simulator_keeps_workers_busy_and_counts():
    search = get_search_class("hps", "random")(polynome2.build(2), random_state=0)
    told = simulate_async(search, polynome2.run, 17, 4, 0)
    assert len(told) == 17 and search.num_asked == 17 and search.num_told == 17
    trajectory = best_so_far(told)
    assert np.all(np.diff(trajectory) >= 0) and trajectory[-1] == max(y for _, y in told)
