"""A problem whose results.csv cells need care: the empty string and a quoted string as choices, a
conditional log-uniform float, an integer, an ordinal (results.csv damage tests, issue 12)."""
from __future__ import annotations

from typing import Any

import ConfigSpace as CS

from hpcnas.problem import HpProblem

Problem = HpProblem()
_kind = Problem.add_hyperparameter(["adam", "", '"q",x', "sgd"], "kind")
_lr = Problem.add_hyperparameter((1e-4, 1.0, "log-uniform"), "lr")
Problem.add_hyperparameter((1, 64), "units")
Problem.add_hyperparameter([0.1, 0.5], "drop", ordinal=True)
Problem.add_condition(CS.EqualsCondition(_lr, _kind, "sgd"))


def run(config: dict[str, Any]) -> float:
    return float(config["units"]) + float(config.get("lr", 0.0))
