"""HpProblem: hyper-parameter types, constraints, starting points, JSON, errors."""
from __future__ import annotations

import math

import ConfigSpace as CS
import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.problem import HpProblem
from tests.unit._hps_support import check_valid, mixed_problem


def test_types_from_deephyper_style_values():
    p = mixed_problem()
    space = p.space
    assert isinstance(space["x"], CS.UniformFloatHyperparameter) and not space["x"].log
    assert isinstance(space["units"], CS.UniformIntegerHyperparameter)
    assert isinstance(space["lr"], CS.UniformFloatHyperparameter) and space["lr"].log
    assert isinstance(space["optimizer"], CS.CategoricalHyperparameter)
    assert isinstance(space["batch"], CS.OrdinalHyperparameter)
    assert list(space["batch"].sequence) == [16, 32, 64]
    assert sorted(p.hyperparameter_names) == sorted(["x", "units", "lr", "optimizer", "batch", "momentum"])
    assert len(p) == 6 and "6 hyper-parameters" in repr(p)


def test_ready_configspace_hyperparameter_and_default():
    p = HpProblem()
    p.add_hyperparameter(CS.Float("a", (0.0, 1.0)))
    p.add_hyperparameter((0.0, 10.0), "b", default_value=2.5)
    assert p.space["b"].default_value == 2.5 and "a" in p.hyperparameter_names


def test_samples_respect_conditions_and_forbidden():
    p = mixed_problem()
    samples = p.sample(300, rng=0)
    assert len(samples) == 300
    for c in samples:
        check_valid(p, c)
    assert any("momentum" in c for c in samples) and any("momentum" not in c for c in samples)
    assert p.sample(5, rng=1) == p.sample(5, rng=1)


def test_starting_points_checked():
    p = mixed_problem()
    assert p.starting_points == [{"x": 0.0, "units": 8, "lr": 1e-3, "optimizer": "adam", "batch": 32}]
    with pytest.raises(HpcnasError, match="starting point"):
        p.add_starting_point(x=0.0, units=8, lr=1e-3, optimizer="adam", batch=32, momentum=0.5)  # inactive
    with pytest.raises(HpcnasError, match="starting point"):
        p.add_starting_point(x=0.0, units=8, lr=1e-3, optimizer="rms", batch=64)  # forbidden
    with pytest.raises(HpcnasError, match="unknown hyper-parameters"):
        p.add_starting_point(y=1.0)


def test_json_round_trip_keeps_space_and_starting_points():
    p = mixed_problem()
    q = HpProblem.from_json(p.to_json())
    assert q.space == p.space
    assert q.starting_points == p.starting_points
    assert q.fingerprint() == p.fingerprint()
    assert q.sample(10, rng=3) == p.sample(10, rng=3)
    other = HpProblem()
    other.add_hyperparameter((0.0, 1.0), "x")
    assert other.fingerprint() != p.fingerprint()


@pytest.mark.parametrize(
    "value, match",
    [
        ((5.0, 1.0), "lower bound 5.0 must be below upper bound 1.0"),
        ((0.0, 1.0, "log-uniform"), "log-uniform range needs lower bound > 0"),
        ((0.0, math.inf), "finite"),
        (("a", "b"), "bounds must be numbers"),
        ((0.0, 1.0, "normal"), "unknown prior 'normal'"),
        ((0.0, 1.0, 2.0, 3.0), "a range is"),
        ([], "empty"),
        (["a", "a"], "duplicates"),
        ({"low": 0}, "cannot read"),
    ],
)
def test_bad_ranges_are_one_line_errors(value, match):
    with pytest.raises(HpcnasError, match=match) as info:
        HpProblem().add_hyperparameter(value, "h")
    assert "\n" not in str(info.value) and "'h'" in str(info.value)


def test_duplicate_name_missing_name_empty_problem_bad_json():
    p = HpProblem()
    p.add_hyperparameter((0, 1), "a")
    with pytest.raises(HpcnasError, match="defined twice"):
        p.add_hyperparameter((0, 2), "a")
    with pytest.raises(HpcnasError, match="needs a name"):
        p.add_hyperparameter((0, 2))
    with pytest.raises(HpcnasError, match="no hyper-parameters"):
        HpProblem().check()
    with pytest.raises(HpcnasError, match="malformed"):
        HpProblem.from_json("{not json")


def test_validate_config_returns_plain_values():
    p = mixed_problem()
    c = p.validate_config({"x": 1.0, "units": 3, "lr": 0.01, "optimizer": "sgd", "batch": 16, "momentum": 0.5})
    assert type(c["batch"]) is int and type(c["optimizer"]) is str
    with pytest.raises(HpcnasError, match="not valid"):
        p.validate_config({"x": 1.0, "units": 3, "lr": 0.01, "optimizer": "sgd", "batch": 16})  # momentum missing


def _many(n: int) -> list[tuple]:
    """``n`` hyper-parameters of every kind, as ``add_hyperparameter`` arguments."""
    kinds = [
        lambda i: ((0.0, 1.0 + i), f"f{i:04d}", {}),
        lambda i: ((1, 10 + i), f"i{i:04d}", {"default_value": 5}),
        lambda i: ((1e-5, 1e-1, "log-uniform"), f"l{i:04d}", {}),
        lambda i: (["a", "b", "c"], f"c{i:04d}", {}),
        lambda i: ([1, 2, 4], f"o{i:04d}", {"ordinal": True}),
    ]
    return [kinds[i % len(kinds)](i) for i in range(n)]


def test_many_hyperparameters_give_the_space_of_configspace_bulk_add(monkeypatch):
    """Issue 12: one ConfigSpace add per batch, not per hyper-parameter (that was quadratic);
    the space, its order, its JSON and its fingerprint are those of ConfigSpace's bulk add."""
    from hpcnas.problem.hp_problem import _make_hyperparameter

    specs = _many(300)
    adds = []
    real_add = CS.ConfigurationSpace.add
    monkeypatch.setattr(CS.ConfigurationSpace, "add", lambda self, *a: adds.append(a) or real_add(self, *a))
    p = HpProblem(seed=3)
    for value, name, kw in specs:
        p.add_hyperparameter(value, name, **kw)
    # conditions and forbidden clauses between and after the hyper-parameters
    p.add_condition(CS.EqualsCondition(p.space["f0000"], p.space["c0003"], "a"))
    p.add_hyperparameter((0.0, 2.0), "late")
    p.add_forbidden_clause(CS.ForbiddenAndConjunction(
        CS.ForbiddenEqualsClause(p.space["c0003"], "c"), CS.ForbiddenEqualsClause(p.space["o0004"], 4)))
    p.add_condition(CS.InCondition(p.space["late"], p.space["c0008"], ["a", "b"]))
    assert len(p) == 301
    assert len(adds) <= 6  # a handful of batches, not one per hyper-parameter
    monkeypatch.setattr(CS.ConfigurationSpace, "add", real_add)

    bulk = CS.ConfigurationSpace(seed=3)
    bulk.add([_make_hyperparameter(v, n, kw.get("default_value"), kw.get("ordinal", False)) for v, n, kw in specs])
    bulk.add(CS.EqualsCondition(bulk["f0000"], bulk["c0003"], "a"))
    bulk.add(CS.Float("late", (0.0, 2.0)))
    bulk.add(CS.ForbiddenAndConjunction(
        CS.ForbiddenEqualsClause(bulk["c0003"], "c"), CS.ForbiddenEqualsClause(bulk["o0004"], 4)))
    bulk.add(CS.InCondition(bulk["late"], bulk["c0008"], ["a", "b"]))
    assert p.space == bulk
    assert p.hyperparameter_names == list(bulk.keys())
    assert p.to_dict()["space"] == bulk.to_serialized_dict()
    q = HpProblem.from_json(p.to_json())
    assert q.space == p.space and q.fingerprint() == p.fingerprint()
    assert p.sample(20, rng=4) == q.sample(20, rng=4)
    for c in p.sample(50, rng=5):
        assert ("f0000" in c) == (c["c0003"] == "a") and not (c["c0003"] == "c" and c["o0004"] == 4)


def test_pending_hyperparameters_are_checked_like_added_ones():
    p = HpProblem()
    p.add_hyperparameter((0.0, 1.0), "x")
    with pytest.raises(HpcnasError, match="'x' is defined twice"):
        p.add_hyperparameter([1, 2], "x")  # still pending: detected all the same
    assert "x" in p.hyperparameter_names and len(p) == 1
    p.add_hyperparameter((0.0, 1.0), "y")
    p.add_starting_point(x=0.5, y=0.25)  # reads the space: the pending ones are added first
    assert p.starting_points == [{"x": 0.5, "y": 0.25}]
    with pytest.raises(HpcnasError, match="'y' is defined twice"):
        p.add_hyperparameter(CS.Float("y", (0.0, 1.0)))
