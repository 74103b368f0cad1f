"""Hartmann-6 (negated for maximisation): six dimensions ``x1`` ... ``x6`` in [0, 1].

``f(x) = -sum_i alpha_i exp(-sum_j A_ij (x_j - P_ij)^2)`` with the usual constants.
Known optimum of ``run = -f``: ``OPTIMUM = 3.32237`` at
``(0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hpcnas.problem import HpProblem

ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
OPTIMUM = 3.32237
OPTIMAL_CONFIG = dict(zip((f"x{i}" for i in range(1, 7)), (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)))
NAMES = tuple(f"x{i}" for i in range(1, 7))

Problem = HpProblem()
for _name in NAMES:
    Problem.add_hyperparameter((0.0, 1.0), _name)


def evaluate(x: np.ndarray) -> np.ndarray:
    """Vectorised ``-f``: rows of ``x`` are points in [0, 1]^6."""
    x = np.atleast_2d(x)
    inner = np.sum(A[None, :, :] * (x[:, None, :] - P[None, :, :]) ** 2, axis=2)
    return np.sum(ALPHA[None, :] * np.exp(-inner), axis=1)


def run(config: dict[str, Any]) -> float:
    return float(evaluate(np.array([[config[n] for n in NAMES]]))[0])
