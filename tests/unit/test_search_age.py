"""AgE: options, aging population, type-aware single mutations."""
from __future__ import annotations

import numpy as np
import pytest

from hpcnas.core.errors import UsageError
from hpcnas.problem import HpProblem
from hpcnas.search.hps.age import AgE
from tests.unit._hps_support import check_valid, mixed_problem, toy_objective


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"population_size": 0}, "--population-size"),
        ({"population_size": 10**20}, "--population-size must be an integer from 1 to 2147483647"),
        ({"sample_size": 0}, "--sample-size"),
        ({"population_size": 5, "sample_size": 6}, r"--sample-size \(6\) cannot exceed --population-size \(5\)"),
        ({"mutation_scale": 0.0}, "--mutation-scale"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(UsageError, match=match):
        AgE(mixed_problem(), **kwargs)


def test_defaults():
    search = AgE(mixed_problem())
    assert (search.population_size, search.sample_size) == (100, 10)


def _filled(problem, size=6, sample=3, seed=0):
    search = AgE(problem, random_state=seed, population_size=size, sample_size=sample)
    first = search.ask(size)
    search.tell([(c, toy_objective(c)) for c in first])
    return search, first


def test_population_ages_and_failures_stay_out():
    search, first = _filled(mixed_problem(with_start=False))
    assert len(search.population) == 6
    child = search.ask(1)[0]
    search.tell([(child, None)])
    assert len(search.population) == 6 and all(not np.isnan(y) for _, y in search.population)
    oldest = search.population[0][0].copy()
    child = search.ask(1)[0]
    search.tell([(child, -1e9)])  # even a terrible newcomer pushes out the oldest member
    assert len(search.population) == 6
    assert not np.array_equal(search.population[0][0], oldest, equal_nan=True)
    assert search.population[-1][1] == -1e9


def test_mutants_change_one_hyperparameter_and_stay_valid():
    problem = mixed_problem(with_start=False)
    search, first = _filled(problem, size=6, sample=6)
    parent = max(first, key=toy_objective)  # sample_size == population: parent is the best
    for _ in range(30):
        child = search.ask(1)[0]
        check_valid(problem, child)
        changed = {k for k in set(child) | set(parent) if child.get(k) != parent.get(k)}
        # one change, plus 'momentum' appearing/disappearing when 'optimizer' switches
        assert len(changed - {"momentum"}) == 1 or changed == {"momentum"}, (parent, child)


def test_mutation_respects_types():
    p = HpProblem()
    p.add_hyperparameter((1, 10), "i")
    p.add_hyperparameter((1e-4, 1.0, "log-uniform"), "lr")
    p.add_hyperparameter(["a", "b", "c"], "cat")
    p.add_hyperparameter([1, 2, 4, 8, 16], "ordv", ordinal=True)
    search = AgE(p, random_state=0, population_size=1, sample_size=1)
    parent = {"i": 5, "lr": 1e-2, "cat": "b", "ordv": 4}
    search.tell([(parent, 1.0)])
    seen = {k: set() for k in parent}
    for _ in range(80):
        child = search.ask(1)[0]
        for k in parent:
            if child[k] != parent[k]:
                seen[k].add(child[k])
        search.tell([(child, 0.0)])  # worse: the parent... ages out, so re-tell it as best
        search.population.clear()
        search.tell([(parent, 1.0)])
    assert all(isinstance(v, int) and 1 <= v <= 10 and v != 5 for v in seen["i"])
    assert seen["ordv"] <= {2, 8} and seen["ordv"]  # ordinal neighbours only
    assert seen["cat"] <= {"a", "c"} and seen["cat"]
    assert all(1e-4 <= v <= 1.0 for v in seen["lr"]) and seen["lr"]
