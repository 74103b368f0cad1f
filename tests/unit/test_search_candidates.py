"""Candidate generators of model-based search (trust region, good-point marginals)."""
from __future__ import annotations

import numpy as np

from hpcnas.problem import HpProblem
from hpcnas.search.hps import candidates
from hpcnas.search.hps.encoding import SpaceCodec
from tests.unit._hps_support import check_valid, mixed_problem


def _categorical_codec(dims: int = 6, choices: int = 5) -> SpaceCodec:
    p = HpProblem()
    for i in range(dims):
        p.add_hyperparameter([f"op{k}" for k in range(choices)], f"c{i}")
    return SpaceCodec(p.space, seed=0)


def test_trust_region_in_a_categorical_space_changes_about_one_column():
    codec = _categorical_codec()
    center = codec.sample(1)[0]
    moves = candidates.trust_region(codec, np.repeat(center[None, :], 2000, axis=0), np.full(2000, 0.1))
    changed = (moves != center[None, :]).sum(axis=1)
    assert changed.min() >= 1  # never the center itself
    assert 1.0 <= changed.mean() <= 2.0  # neighbours, not random points (random: 4.8 of 6)


def test_trust_region_in_a_high_dimensional_space_moves_a_subset_of_numbers():
    p = HpProblem()
    for i in range(100):
        p.add_hyperparameter((0.0, 1.0), f"x{i}")
    codec = SpaceCodec(p.space, seed=1)
    center = np.full((500, 100), 0.5)
    moves = candidates.trust_region(codec, center, np.full(500, 0.05))
    changed = (~np.isclose(moves, 0.5)).sum(axis=1)
    assert 10 <= changed.mean() <= 30  # about 20 of 100 numbers move per candidate


def test_good_marginals_recombine_the_good_points_values():
    codec = _categorical_codec(dims=4, choices=10)
    good = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], dtype=float)
    draws = candidates.good_marginals(codec, good, 4000, refresh=0.1)
    for j in range(4):
        from_good = np.isin(draws[:, j], good[:, j]).mean()
        assert 0.85 <= from_good <= 0.97  # kept with 0.9, redrawn uniformly (may hit a good value)
    mixed = ~((draws == good[0]).all(axis=1) | (draws == good[1]).all(axis=1))
    assert mixed.mean() > 0.5  # columns come from different good points


def test_good_marginals_of_numbers_stay_near_the_good_values():
    p = HpProblem()
    p.add_hyperparameter((0.0, 1.0), "x")
    codec = SpaceCodec(p.space, seed=2)
    good = np.array([[0.2], [0.21], [0.19], [0.2]])
    draws = candidates.good_marginals(codec, good, 1000)[:, 0]
    assert np.all((draws >= 0) & (draws <= 1))
    assert np.median(np.abs(draws - 0.2)) < 0.05


def test_generators_respect_conditions_and_forbidden_clauses():
    problem = mixed_problem()
    codec = SpaceCodec(problem.space, seed=3)
    base = codec.sample(30)
    for vectors in (candidates.trust_region(codec, base, np.full(30, 0.3)), candidates.good_marginals(codec, base, 200)):
        assert len(vectors) > 0
        for config in codec.to_configs(vectors):
            check_valid(problem, config)


def _log_int_codec() -> SpaceCodec:
    p = HpProblem()
    p.add_hyperparameter((8, 512, "log-uniform"), "units")
    p.add_hyperparameter((10, 1000, "log-uniform"), "trees")
    p.add_hyperparameter((1, 8), "layers")
    return SpaceCodec(p.space, seed=0)


def test_every_generator_keeps_log_integers_on_their_grid():
    # a vector off the grid changes on its way through the configuration: it is then not
    # recognised when told (its lie stays in the model, its trust-region result is lost)
    codec = _log_int_codec()
    start = codec.sample(50)
    made = [
        codec.mutate(start, 1, 0.1),
        candidates.trust_region(codec, start, np.full(50, 0.1)),
        candidates.good_marginals(codec, start[:5], 200),
    ]
    for vectors in made:
        again = codec.to_vectors(codec.to_configs(vectors))
        assert codec.keys(again) == codec.keys(vectors)


def test_a_mutated_integer_moves_at_least_one_step_on_a_log_grid():
    codec = _log_int_codec()
    parents = codec.to_vectors([{"units": 8, "trees": 1000, "layers": 4}] * 200)
    children = codec.mutate(parents, 3, 1e-6)  # a tiny step still moves every integer
    configs = codec.to_configs(children)
    assert all(c["units"] == 9 and c["trees"] == 999 and c["layers"] in (3, 5) for c in configs)
