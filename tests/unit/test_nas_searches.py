"""NAS searches on the combo problem's space with a cheap synthetic objective (no training)."""
from __future__ import annotations

import argparse
import math
import subprocess
import sys

import numpy as np
import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.nas.problems.combo.problem import Problem
from hpcnas.search.base import get_search_class, search_names

SMALL = {"age": {"population_size": 10, "sample_size": 3}, "agebo": {"population_size": 10, "sample_size": 3}}
TARGET = [3, 5, 0, 7, 1, 4, 0, 1]


def objective(config: dict) -> float:
    """Matches of arch_seq with TARGET, minus the learning rate's log-distance to 0.01."""
    matches = sum(int(a == t) for a, t in zip(config["arch_seq"], TARGET))
    return matches - abs(math.log10(config["learning_rate"]) + 2.0)


def lr_objective(config: dict) -> float:
    """Mostly the learning rate's log-distance to 0.01; the architecture adds a little."""
    matches = sum(int(a == t) for a, t in zip(config["arch_seq"], TARGET))
    return 0.05 * matches - abs(math.log10(config["learning_rate"]) + 2.0)


def drive(name: str, evals: int, seed: int, batch: int = 4, score=objective, **options) -> tuple[object, list[dict]]:
    search = get_search_class("nas", name)(Problem, random_state=seed, **{**SMALL.get(name, {}), **options})
    asked: list[dict] = []
    while len(asked) < evals:
        configs = search.ask(batch)
        asked += configs
        search.tell([(c, score(c)) for c in configs])
    return search, asked


def test_all_nas_searches_registered():
    assert set(search_names("nas")) >= {"age", "agebo", "random", "ambsmixed", "regevomixed"}


@pytest.mark.parametrize("name", ["age", "agebo", "random", "ambsmixed", "regevomixed"])
def test_asks_are_valid_seeded_and_survive_failures_and_resume(name):
    search, asked = drive(name, 24, seed=7)
    for c in asked:
        assert Problem.validate_config(c) == c
    _, again = drive(name, 24, seed=7)
    assert again == asked
    # failed evaluations and resumed rows (no 'problem' entry, as read back from results.csv)
    resumed = [{k: v for k, v in c.items() if k != "problem"} for c in Problem.sample(3, 1)]
    search.tell([(asked[0], None), *[(c, 1.0) for c in resumed]])
    assert len(search.ask(3)) == 3


def test_age_keeps_hyperparameters_fixed_and_evolves_architectures():
    _, asked = drive("age", 60, seed=1)
    assert len({(c["batch_size"], c["learning_rate"], c["optimizer"]) for c in asked}) == 1
    assert len({tuple(c["arch_seq"]) for c in asked}) > 40
    late = asked[-20:]
    assert np.mean([objective(c) for c in late]) > np.mean([objective(c) for c in asked[:10]])


def test_evolution_beats_random_on_architecture_matching():
    def best(name: str, seed: int) -> float:
        search, _ = drive(name, 120, seed)
        return search.best[1]

    age = [best("age", s) for s in range(3)]
    rnd = [best("random", s) for s in range(3)]
    assert np.median(age) > np.median(rnd)


def test_agebo_bo_moves_learning_rate_towards_the_optimum():
    def distance(name: str) -> float:
        _, asked = drive(name, 80, seed=3, score=lr_objective)
        return float(np.mean([abs(math.log10(c["learning_rate"]) + 2.0) for c in asked[-30:]]))

    assert distance("agebo") < 0.6 * distance("random")


def test_agebo_options_and_errors():
    parser = argparse.ArgumentParser()
    get_search_class("nas", "agebo").add_arguments(parser)
    args = parser.parse_args(["--kappa", "0.5", "--n-jobs", "2", "--population-size", "20"])
    assert (args.kappa, args.n_jobs, args.population_size) == (0.5, 2, 20)
    search = get_search_class("nas", "agebo")(Problem, random_state=0, kappa=0.5, n_jobs=2)
    assert search.kappa == 0.5 and search._bo.kappa == 0.5 and search._bo.n_jobs == 2
    with pytest.raises(HpcnasError, match="kappa"):
        get_search_class("nas", "agebo")(Problem, kappa=-1.0)
    with pytest.raises(HpcnasError, match="sample-size"):
        get_search_class("nas", "age")(Problem, population_size=5, sample_size=8)
    from tests.support.toy import Problem as HpOnly

    with pytest.raises(HpcnasError, match="need a NaProblem"):
        get_search_class("nas", "age")(HpOnly)


def test_module_entry_point_prints_search_options():
    proc = subprocess.run([sys.executable, "-m", "hpcnas.search.nas.agebo", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--kappa" in proc.stdout and "--n-jobs" in proc.stdout and "--problem" in proc.stdout


def test_mixed_searches_take_their_inner_search_options():
    ambs = get_search_class("nas", "ambsmixed")(Problem, random_state=0, kappa=0.5, n_initial_points=2)
    assert (ambs._inner.kappa, ambs._inner.n_initial_points) == (0.5, 2)
    evo = get_search_class("nas", "regevomixed")(Problem, random_state=0, population_size=4, sample_size=2)
    assert evo._inner.population_size == 4
    with pytest.raises(HpcnasError, match="unknown option"):
        get_search_class("nas", "ambsmixed")(Problem, bogus=1)
    parser = argparse.ArgumentParser()
    get_search_class("nas", "ambsmixed").add_arguments(parser)
    assert parser.parse_args(["--kappa", "3"]).kappa == 3.0
