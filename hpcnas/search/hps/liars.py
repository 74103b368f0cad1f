"""What a pending point tells AMBS's surrogate until its result arrives (its *lie*).

Asynchronous asks *lie* about pending points: each point handed out and not yet told is added
to the surrogate with a lie, so that the next asks go elsewhere; the lie is replaced by the real
objective when it is told. The constant liars follow DeepHyper/scikit-optimize, which minimise
``-objective``:

* ``cl_max`` (the default) lies with the *worst* objective seen. It spreads the workers; on the
  suite it costs 8 workers 29 % more evaluations than 1 for the same regret on smooth problems,
  as the worst value in the leaves of the best point's neighbourhood sends every other worker
  away from it.
* ``cl_min`` lies with the best objective seen, ``cl_mean`` with the mean.
* ``kb`` (a *kriging believer*) lies with the model's own mean at the point (the mean when it
  was picked; a new model's mean after a refit): the leaves keep their mean and lose spread, so
  the trust region around the best stays attractive. It won the suite with 8 workers but loses
  on the 10-D sphere with 4 (docs/benchmark_suite.rst), so it is not the default.
* ``blend`` lies between the two: the model's mean moved ``blend_weight`` (an AMBS setting,
  0.5) of the way towards the worst value seen, so a pending point repels the next picks less
  than ``cl_max`` and more than ``kb``.

With one worker nothing is pending at an ask, so the strategy does not change the asks. How
AMBS adds and removes lies (leaf statistics of the fitted model, never a refit) is in
:mod:`hpcnas.search.hps.ambs`.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

LIAR_STRATEGIES = ("cl_max", "cl_min", "cl_mean", "kb", "blend")


def is_believer(strategy: str) -> bool:
    """Whether ``strategy`` lies with the model's mean (stored in the surrogate's own scale)
    rather than with a constant objective."""
    return strategy in ("kb", "blend")


def believed(strategy: str, means: Any, worst: float, weight: float) -> np.ndarray:
    """A believer's lies at points where the model's means are ``means``: the means themselves
    (``kb``), or moved ``weight`` of the way towards ``worst`` (``blend``; all in the
    surrogate's scale, larger is better)."""
    means = np.asarray(means, dtype=float)
    return means + weight * (worst - means) if strategy == "blend" else means


def constant_lie(strategy: str, successes: np.ndarray) -> float:
    """The objective a constant liar tells for every pending point, from the objectives of the
    successful evaluations so far (all maximised)."""
    if strategy == "cl_min":
        return float(successes.max())
    return float(successes.mean() if strategy == "cl_mean" else successes.min())


def lie_targets(strategy: str, lies: Sequence[Any], warp: Callable[[Any], np.ndarray]) -> np.ndarray:
    """The surrogate's targets of ``lies``: a believer's lies are in the surrogate's scale
    already, a constant liar's are objectives (warped like told objectives)."""
    return np.asarray(lies, dtype=float) if is_believer(strategy) else warp(list(lies))
