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
