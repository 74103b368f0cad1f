"""Ackley-10 (negated for maximisation): ``x0`` ... ``x9`` in [-32.768, 32.768].

``f(x) = -20 exp(-0.2 sqrt(mean(x^2))) - exp(mean(cos(2 pi x))) + 20 + e``.
Known optimum of ``run = -f``: ``OPTIMUM = 0.0`` at ``x = 0``; the surface is highly
multi-modal around it.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from hpcnas.problem import HpProblem

NUM_DIMS = 10
BOUND = 32.768
OPTIMUM = 0.0
NAMES = tuple(f"x{i}" for i in range(NUM_DIMS))
OPTIMAL_CONFIG = {n: 0.0 for n in NAMES}

Problem = HpProblem()
for _name in NAMES:
    Problem.add_hyperparameter((-BOUND, BOUND), _name)


def evaluate(x: np.ndarray) -> np.ndarray:
    """Vectorised ``-f``: rows of ``x`` are points."""
    x = np.atleast_2d(x)
    term1 = -20.0 * np.exp(-0.2 * np.sqrt(np.mean(x**2, axis=1)))
    term2 = -np.exp(np.mean(np.cos(2 * math.pi * x), axis=1))
    return -(term1 + term2 + 20.0 + math.e)


def run(config: dict[str, Any]) -> float:
    return float(evaluate(np.array([[config[n] for n in NAMES]]))[0])
