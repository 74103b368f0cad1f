"""Shared fixtures of the HPS search tests: a mixed conditional space and a toy objective."""
from __future__ import annotations

import math

import ConfigSpace as CS

from hpcnas.problem import HpProblem


def mixed_problem(with_start: bool = True) -> HpProblem:
    """float, int, log float, categorical, ordinal, a condition and a forbidden clause."""
    p = HpProblem()
    p.add_hyperparameter((-10.0, 10.0), "x")
    p.add_hyperparameter((1, 64), "units")
    p.add_hyperparameter((1e-5, 1e-1, "log-uniform"), "lr")
    opt = p.add_hyperparameter(["adam", "sgd", "rms"], "optimizer")
    batch = p.add_hyperparameter([16, 32, 64], "batch", ordinal=True)
    mom = p.add_hyperparameter((0.0, 0.99), "momentum")
    p.add_condition(CS.EqualsCondition(mom, opt, "sgd"))
    p.add_forbidden_clause(
        CS.ForbiddenAndConjunction(CS.ForbiddenEqualsClause(opt, "rms"), CS.ForbiddenEqualsClause(batch, 64))
    )
    if with_start:
        p.add_starting_point(x=0.0, units=8, lr=1e-3, optimizer="adam", batch=32)
    return p


def toy_objective(c: dict) -> float:
    return -c["x"] ** 2 - abs(math.log10(c["lr"]) + 3) + (1.0 if c["optimizer"] == "sgd" else 0.0) + c.get("momentum", 0.0)


def check_valid(problem: HpProblem, config: dict) -> None:
    """Raise unless ``config`` is a valid configuration that respects every constraint."""
    problem.validate_config(config)
    assert ("momentum" in config) == (config["optimizer"] == "sgd"), config
    assert not (config["optimizer"] == "rms" and config["batch"] == 64), config


def drive(search, objective, n_evals: int, workers: int = 4, fail_every: int = 0) -> list[dict]:
    """Asynchronous loop: keep ``workers`` points pending, tell the oldest, ask one more."""
    pending = search.ask(workers)
    asked = list(pending)
    for i in range(n_evals):
        config = pending.pop(0)
        y = None if fail_every and i % fail_every == fail_every - 1 else objective(config)
        search.tell([(config, y)])
        new = search.ask(1)
        pending += new
        asked += new
    return asked
