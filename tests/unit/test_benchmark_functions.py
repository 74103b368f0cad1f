"""Benchmark problems: known optima and agreement of run() with the vectorised form."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from hpcnas.benchmark import BENCHMARKS


@pytest.mark.parametrize("name", BENCHMARKS)
def test_optimum_reached_at_optimal_config_and_not_exceeded(name):
    module = importlib.import_module(f"hpcnas.benchmark.{name}")
    module.Problem.validate_config(module.OPTIMAL_CONFIG)
    assert module.run(module.OPTIMAL_CONFIG) == pytest.approx(module.OPTIMUM, abs=1e-4)
    samples = module.Problem.sample(2000, rng=0)
    values = np.array([module.run(c) for c in samples])
    assert values.max() <= module.OPTIMUM + 1e-9
    names = module.Problem.hyperparameter_names
    order = sorted(names, key=lambda n: int(n[1:]))
    vec = module.evaluate(np.array([[c[n] for n in order] for c in samples[:50]]))
    assert vec == pytest.approx(values[:50])


def test_known_values():
    from hpcnas.benchmark import ackley, branin, hartmann6, polynome2

    assert polynome2.run({f"x{i}": 1.0 for i in range(10)}) == -10.0
    assert len(polynome2.Problem) == 10 and len(polynome2.build(3)) == 3
    for opt in branin.OPTIMAL_CONFIGS:
        assert branin.run(opt) == pytest.approx(-0.397887, abs=1e-5)
    assert branin.run({"x1": 0.0, "x2": 0.0}) == pytest.approx(-55.60211, abs=1e-4)
    assert hartmann6.run(hartmann6.OPTIMAL_CONFIG) == pytest.approx(3.32237, abs=1e-5)
    assert ackley.run({n: 1.0 for n in ackley.NAMES}) == pytest.approx(-3.6253849, abs=1e-6)
