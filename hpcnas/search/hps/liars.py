"""What a pending point tells AMBS's surrogate until its result arrives (its *lie*).

* ``none`` (the default): nothing. A pending point is not in the model until it is told; the
  asks still differ because each screens fresh random candidates (and the picks of one batch
  ``ask(k)`` repel each other with temporary ``cl_max`` lies). On the suite
  (docs/benchmark_suite.rst) 8 asynchronous workers then need a median 1.19 times the
  evaluations of one for the same regret after 100 (10 seeds; ``cl_max`` 1.29), and on
  polynome2 with 4,096 workers the best after 10,000 evaluations is -0.9 instead of -6.9
  (``benchmarks/master_scale.py sim``): every lie near the best point makes its neighbourhood
  look worse, and with many pending points the picks are pushed out of the trust region.

Asynchronous asks may instead *lie* about pending points: each point handed out and not yet
told is added to the surrogate with a lie, so that the next asks go elsewhere; the lie is
replaced by the real objective when it is told. The constant liars follow
DeepHyper/scikit-optimize, which minimise ``-objective``:

* ``cl_max`` (DeepHyper's default) lies with the *worst* objective seen. It spreads the
  workers; on the suite it costs 8 workers 29 % more evaluations than 1 for the same regret,
  as the worst value in the leaves of the best point's neighbourhood sends every other
  worker away from it.
* ``cl_min`` lies with the best objective seen, ``cl_mean`` with the mean.
* ``kb`` (a *kriging believer*) lies with the model's own mean at the point (the mean when it
  was picked; a new model's mean after a refit): the leaves keep their mean and lose spread, so
  the trust region around the best stays attractive.
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

LIAR_STRATEGIES = ("none", "cl_max", "cl_min", "cl_mean", "kb", "blend")


def lies_pending(strategy: str) -> bool:
    """Whether pending points change the model until they are told (``none``: they do not)."""
    return strategy != "none"


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
    successful evaluations so far (all maximised); the worst for ``none`` and the believers
    (the temporary lies between the picks of one batch)."""
    if strategy == "cl_min":
        return float(successes.max())
    return float(successes.mean() if strategy == "cl_mean" else successes.min())


def lie_targets(strategy: str, lies: Sequence[Any], warp: Callable[[Any], np.ndarray]) -> np.ndarray:
    """The surrogate's targets of ``lies``: a believer's lies are in the surrogate's scale
    already, a constant liar's are objectives (warped like told objectives)."""
    return np.asarray(lies, dtype=float) if is_believer(strategy) else warp(list(lies))
