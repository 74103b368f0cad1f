"""Random search: uniform on the normalised scale, constraints respected."""
from __future__ import annotations

import numpy as np

from hpcnas.search.hps.random_search import RandomSearch
from tests.unit._hps_support import check_valid, mixed_problem


def test_samples_cover_space_with_log_scale_and_constraints():
    problem = mixed_problem(with_start=False)
    configs = RandomSearch(problem, random_state=0).ask(600)
    for c in configs:
        check_valid(problem, c)
    lr = np.log10([c["lr"] for c in configs])
    assert -3.4 < np.median(lr) < -2.6  # log-uniform on [1e-5, 1e-1]: median 1e-3
    units = [c["units"] for c in configs]
    assert min(units) == 1 and max(units) == 64 and all(isinstance(u, int) for u in units)
    opts = {o: sum(c["optimizer"] == o for c in configs) for o in ("adam", "sgd", "rms")}
    assert all(n > 100 for n in opts.values())
    assert not any(c["optimizer"] == "rms" and c["batch"] == 64 for c in configs)
    x = np.array([c["x"] for c in configs])
    assert -10 <= x.min() < -9 and 9 < x.max() <= 10


def test_starting_points_then_random():
    problem = mixed_problem()
    search = RandomSearch(problem, random_state=1)
    assert search.ask(1) == problem.starting_points
    assert search.ask(1) != problem.starting_points
