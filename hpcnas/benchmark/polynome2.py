"""polynome2: maximise ``-sum(x_i ** 2)`` over ``x_i`` in [-10, 10] (10 dimensions).

Known optimum: ``OPTIMUM = 0.0`` at ``x_i = 0`` for all ``i``. ``build(n_dims)`` makes the
same problem in another dimension (used by fast tests). ``Problem`` is built on first use, so an
evaluation process that imports this module for ``run`` does not load ConfigSpace and SciPy
(about 1 s per process).
"""
from __future__ import annotations

from typing import Any

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hpcnas.problem import HpProblem

NUM_DIMS = 10
LOW, HIGH = -10.0, 10.0
OPTIMUM = 0.0


def build(n_dims: int = NUM_DIMS) -> HpProblem:
    """The polynome2 problem in ``n_dims`` dimensions (hyper-parameters ``x0`` ... ``x{n-1}``)."""
    from hpcnas.problem import HpProblem

    problem = HpProblem()
    for i in range(n_dims):
        problem.add_hyperparameter((LOW, HIGH), f"x{i}")
    return problem


def evaluate(x: np.ndarray) -> np.ndarray:
    """Vectorised objective: rows of ``x`` are points."""
    return -np.sum(np.atleast_2d(x) ** 2, axis=1)


def run(config: dict[str, Any]) -> float:
    """Objective of one configuration (any number of ``x<i>`` keys)."""
    return float(-sum(float(v) ** 2 for k, v in config.items() if k.startswith("x")))


def __getattr__(name: str) -> Any:
    if name == "Problem":
        problem = globals()["Problem"] = build()
        return problem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


OPTIMAL_CONFIG = {f"x{i}": 0.0 for i in range(NUM_DIMS)}
