"""Branin (negated for maximisation): ``x1`` in [-5, 10], ``x2`` in [0, 15].

``f(x) = a (x2 - b x1^2 + c x1 - r)^2 + s (1 - t) cos(x1) + s`` with ``a = 1``,
``b = 5.1 / (4 pi^2)``, ``c = 5 / pi``, ``r = 6``, ``s = 10``, ``t = 1 / (8 pi)``.
Known optimum of ``run = -f``: ``OPTIMUM = -0.397887...`` at three points,
(-pi, 12.275), (pi, 2.275) and (9.42478, 2.475).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from hpcnas.problem import HpProblem

A, B, C, R, S, T = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
OPTIMUM = -0.39788735772973816
OPTIMAL_CONFIGS = ({"x1": -math.pi, "x2": 12.275}, {"x1": math.pi, "x2": 2.275}, {"x1": 9.42478, "x2": 2.475})
OPTIMAL_CONFIG = OPTIMAL_CONFIGS[1]

Problem = HpProblem()
Problem.add_hyperparameter((-5.0, 10.0), "x1")
Problem.add_hyperparameter((0.0, 15.0), "x2")


def evaluate(x: np.ndarray) -> np.ndarray:
    """Vectorised ``-f``: rows of ``x`` are ``(x1, x2)``."""
    x = np.atleast_2d(x)
    x1, x2 = x[:, 0], x[:, 1]
    f = A * (x2 - B * x1**2 + C * x1 - R) ** 2 + S * (1 - T) * np.cos(x1) + S
    return -f


def run(config: dict[str, Any]) -> float:
    return float(evaluate(np.array([[config["x1"], config["x2"]]]))[0])
