"""Multi-objective arithmetic shared by the searches, the master and the analytics.

Every objective is **maximised** (as the single objective of hpcnas): a run function returns
``-loss`` for a loss. Arrays of objectives are ``(n, k)`` float matrices, ``NaN`` rows are
failed evaluations and are left out of everything below.

* :func:`normalise` -- each objective to ``[0, 1]`` over the given bounds, ``0`` the best;
* :class:`Scalarizer` -- randomized augmented Chebyshev scalarization (ParEGO, Knowles 2006;
  random weights as in Paria et al. 2019): ``s(y) = max_i w_i z_i + rho * sum_i w_i z_i`` on the
  normalised ``z`` with weights drawn uniformly on the simplex, and the scalar objective
  ``-s(y)`` maximised. AMBS draws new weights and normalisation bounds at each refit of its
  surrogate (:meth:`Scalarizer.redraw`);
* :func:`pareto_ranks` (non-dominated sorting, front 0 the non-dominated points),
  :func:`crowding_distance` and :func:`selection_keys` -- NSGA-II's order (Deb et al. 2002),
  used by AgE's tournament;
* :func:`pareto_front` and :func:`hypervolume` / :func:`hypervolume_curve` -- what analytics and
  the benchmark report.

Non-dominated sorting and the hypervolume come from ``moocore`` (the C library of
López-Ibáñez et al., the reference implementation of the hypervolume algorithms; ``pip install
'hpcnas[multiobjective]'``); crowding distance, normalisation and scalarization are a few lines
of NumPy here.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hpcnas.core.loading import optional_import

#: weight of the augmentation term of the Chebyshev scalarization (ParEGO's 0.05)
RHO = 0.05


def _moocore() -> Any:
    return optional_import("moocore", "multiobjective")


def as_matrix(values: Any, k: int | None = None) -> np.ndarray:
    """``values`` (rows of objectives, ``None`` for a failure) as an ``(n, k)`` float matrix."""
    rows = [([np.nan] * (k or 1) if v is None else list(v)) for v in values]
    if not rows:
        return np.empty((0, k or 0))
    return np.asarray(rows, dtype=float)


def finite_rows(y: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``y`` without ``NaN`` (successful evaluations)."""
    y = np.asarray(y, dtype=float)
    return ~np.isnan(y).any(axis=1) if y.size else np.zeros(len(y), dtype=bool)


def bounds(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-objective ``(low, high)`` of the finite rows of ``y`` (zeros and ones without any)."""
    ok = np.asarray(y, dtype=float)[finite_rows(y)]
    if not len(ok):
        k = np.asarray(y).shape[1] if np.ndim(y) == 2 else 1
        return np.zeros(k), np.ones(k)
    return ok.min(axis=0), ok.max(axis=0)


def normalise(y: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``(high - y) / (high - low)`` per objective: ``0`` at the best seen, ``1`` at the worst (a
    constant objective gets range 1)."""
    span = np.where(high - low > 0, high - low, 1.0)
    return (high - np.asarray(y, dtype=float)) / span


def chebyshev(y: np.ndarray, weights: np.ndarray, low: np.ndarray, high: np.ndarray, rho: float = RHO) -> np.ndarray:
    """Augmented Chebyshev scalarization of the rows of ``y``, as a value to *maximise* (``NaN``
    for failed rows)."""
    z = normalise(y, low, high) * weights
    return -(z.max(axis=1) + rho * z.sum(axis=1))


class Scalarizer:
    """Random augmented Chebyshev scalarization with weights and bounds fixed between redraws."""

    def __init__(self, k: int, rng: np.random.Generator) -> None:
        self.k = k
        self.rng = rng
        self.weights = self._draw()
        self.low: np.ndarray | None = None
        self.high: np.ndarray | None = None

    def _draw(self) -> np.ndarray:
        return self.rng.dirichlet(np.ones(self.k))  # uniform on the simplex

    def scalarize(self, y: np.ndarray) -> np.ndarray:
        """The scalar objectives of the rows of ``y`` with the current weights and bounds (the
        first call takes its bounds from ``y``)."""
        y = np.asarray(y, dtype=float).reshape(-1, self.k)
        if self.low is None or self.high is None:
            self.low, self.high = bounds(y)
        return chebyshev(y, self.weights, self.low, self.high)

    def redraw(self, y: np.ndarray) -> np.ndarray:
        """New weights, bounds from all of ``y`` (every objective told so far); returns ``y``
        scalarized with them."""
        self.weights = self._draw()
        self.low, self.high = bounds(np.asarray(y, dtype=float).reshape(-1, self.k))
        return self.scalarize(y)


# ----------------------------------------------------------------- Pareto order
def pareto_ranks(y: np.ndarray) -> np.ndarray:
    """Non-dominated sorting of the rows of ``y`` (maximised): ``0`` for the Pareto front, ``1``
    for the front once it is removed, ...; failed rows get ``len(y)``."""
    y = np.asarray(y, dtype=float)
    ranks = np.full(len(y), len(y), dtype=int)
    ok = finite_rows(y)
    if ok.any():
        ranks[ok] = np.asarray(_moocore().pareto_rank(y[ok], maximise=True), dtype=int)
    return ranks


def crowding_distance(y: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of ``y`` (one front): per objective, the normalised
    gap between the two neighbours, summed; the extreme points of each objective get ``inf``."""
    y = np.asarray(y, dtype=float)
    n, k = y.shape if y.ndim == 2 else (len(y), 1)
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(y[:, j], kind="stable")
        column = y[order, j]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def selection_keys(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rank, crowding)`` of every row: NSGA-II prefers the lower rank, then the larger crowding
    distance (computed within each front)."""
    ranks = pareto_ranks(y)
    crowding = np.zeros(len(ranks))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        if r < len(ranks):
            crowding[members] = crowding_distance(np.asarray(y, dtype=float)[members])
    return ranks, crowding


def tournament_winner(drawn: Sequence[int] | np.ndarray, ranks: np.ndarray, crowding: np.ndarray) -> int:
    """The member of ``drawn`` NSGA-II's crowded comparison prefers (lowest rank, then most
    isolated; the first drawn on a tie)."""
    return min(drawn, key=lambda i: (ranks[i], -crowding[i]))


def pareto_front(y: np.ndarray) -> np.ndarray:
    """Mask of the non-dominated rows of ``y`` (failed rows are never on it)."""
    y = np.asarray(y, dtype=float)
    mask = np.zeros(len(y), dtype=bool)
    ok = finite_rows(y)
    if ok.any():
        mask[ok] = np.asarray(_moocore().is_nondominated(y[ok], maximise=True, keep_weakly=True), dtype=bool)
    return mask


# ----------------------------------------------------------------- hypervolume
def default_reference(y: np.ndarray) -> np.ndarray:
    """A reference point for :func:`hypervolume` when none is given: the worst value of each
    objective among the successful rows, minus 10 % of its range (so the extremes count)."""
    low, high = bounds(y)
    return low - 0.1 * np.where(high - low > 0, high - low, 1.0)


def hypervolume(y: np.ndarray, reference: Sequence[float]) -> float:
    """Hypervolume dominated by the rows of ``y`` (maximised) above ``reference``; rows that do not
    dominate the reference point add nothing."""
    y = np.asarray(y, dtype=float)
    ref = np.asarray(reference, dtype=float)
    ok = y[finite_rows(y)] if y.size else y.reshape(0, len(ref))
    ok = ok[(ok > ref).all(axis=1)]
    if not len(ok):
        return 0.0
    return float(_moocore().hypervolume(ok, ref=ref, maximise=True))


def hypervolume_curve(y: np.ndarray, reference: Sequence[float]) -> np.ndarray:
    """Hypervolume of the first ``i + 1`` rows of ``y``, for every ``i`` (in evaluation order);
    recomputed only where a row joins the front."""
    y = np.asarray(y, dtype=float)
    ref = np.asarray(reference, dtype=float)
    curve = np.zeros(len(y))
    front = np.empty((0, len(ref)))
    value = 0.0
    for i, row in enumerate(y):
        if not np.isnan(row).any() and (row > ref).all() and not _dominated(row, front):
            front = np.vstack([front[~_dominates_all(row, front)], row])
            value = float(_moocore().hypervolume(front, ref=ref, maximise=True))
        curve[i] = value
    return curve


def _dominated(row: np.ndarray, front: np.ndarray) -> bool:
    return bool(len(front)) and bool(((front >= row).all(axis=1)).any())


def _dominates_all(row: np.ndarray, front: np.ndarray) -> np.ndarray:
    return np.asarray((row >= front).all(axis=1)) if len(front) else np.zeros(0, dtype=bool)
