"""Acquisition functions for *maximisation*, vectorised over candidates.

All take the surrogate's ``mean`` and ``std`` and the best objective seen, already divided
by the spread of the observed objectives (so ``xi`` is in units of that spread), and return
scores where higher is better:

* ``UCB``: ``mean + kappa * std`` (``kappa`` trades exploration for exploitation),
* ``EI``: expected improvement over ``best + xi``,
* ``PI``: probability of improving on ``best + xi``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import ndtr

_SQRT_2PI = np.sqrt(2.0 * np.pi)


def ucb(mean: np.ndarray, std: np.ndarray, best: float, kappa: float, xi: float) -> np.ndarray:
    return mean + kappa * std


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, kappa: float, xi: float) -> np.ndarray:
    gain = mean - best - xi
    safe = np.maximum(std, 1e-12)
    z = gain / safe
    ei = gain * ndtr(z) + safe * np.exp(-0.5 * z * z) / _SQRT_2PI
    return np.where(std > 1e-12, ei, np.maximum(gain, 0.0))


def probability_of_improvement(mean: np.ndarray, std: np.ndarray, best: float, kappa: float, xi: float) -> np.ndarray:
    gain = mean - best - xi
    return np.where(std > 1e-12, ndtr(gain / np.maximum(std, 1e-12)), (gain > 0).astype(float))


ACQUISITIONS: dict[str, Callable[..., np.ndarray]] = {
    "UCB": ucb,
    "EI": expected_improvement,
    "PI": probability_of_improvement,
}
