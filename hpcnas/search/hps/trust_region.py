"""AMBS's trust-region proposals: the candidates it screens and the step size of its moves.

A mixin of :class:`~hpcnas.search.hps.ambs.AMBS` (its class attributes ``portfolio``,
``recombine``, ``recombine_k``, ``top_k``, ``parent_p``, ``radius_*`` and ``good_fraction`` are
the knobs; the algorithm is in that module's docstring, step 2): candidates from the generators
of :mod:`hpcnas.search.hps.candidates`, the recombined center of the best points, and the
1/5th success rule on the radius.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from hpcnas.search.hps import candidates


class TrustRegionProposals:
    """Candidates and radius of AMBS's trust region (see the module docstring)."""

    codec: Any
    surrogate_model: str
    portfolio: dict[str, float]
    recombine: dict[str, bool]
    recombine_k: int
    top_k: int
    parent_p: float
    radius_spread: float
    radius_init: float
    radius_min: float
    radius_max: float
    radius_grow: float
    good_fraction: float
    _radius: float
    #: results of trust-region proposals that improved the best, and restarts of the radius
    num_region_gains: int
    num_radius_restarts: int
    _float_columns: np.ndarray
    _y: Any
    _vectors: Any
    #: the search's own (AMBS: objectives of the successes; the search base: already asked or told)
    _ok: Callable[[], np.ndarray]
    _is_seen: Callable[[np.ndarray], np.ndarray]

    def _candidates(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the generators of :mod:`~hpcnas.search.hps.candidates` and the
        mask of the trust-region moves among them (their results drive the radius); only
        points not asked or told before."""
        n_local, n_good = int(round(count * self.portfolio["local"])), int(round(count * self.portfolio["good"]))
        if self.recombine[self.surrogate_model]:
            parents = np.repeat(self._center()[None, :], n_local, axis=0)
            scales = np.full(n_local, self._radius)
        else:
            rs = self.codec.rs
            top = self._top(self.top_k)
            parents = top[np.minimum(rs.geometric(self.parent_p, size=n_local) - 1, len(top) - 1)]
            scales = self._radius * 2.0 ** rs.uniform(-self.radius_spread, self.radius_spread, size=n_local)
        local = candidates.trust_region(self.codec, parents, scales)
        n_ok = self._ok().size
        good = candidates.good_marginals(self.codec, self._top(int(np.clip(np.ceil(self.good_fraction * n_ok), 3, 25))), n_good)
        uniform = self.codec.sample(count - len(local) - len(good))
        cands = np.concatenate([uniform, good, local])
        is_local = np.arange(len(cands)) >= len(cands) - len(local)
        fresh = ~self._is_seen(cands)
        return cands[fresh], is_local[fresh]

    def _center(self) -> np.ndarray:
        """Trust-region center: the best point, with its float columns replaced by a weighted
        mean over the ``recombine_k`` best points (weights ``log(k + 1/2) - log(rank)``, as
        CMA-ES) where all of them are active. On a smooth objective the mean of points
        scattered around an optimum is closer to it than each (intermediate recombination)."""
        top = self._top(self.recombine_k)
        center = top[0].copy()
        if len(top) > 1:
            weights = np.log(len(top) + 0.5) - np.log(np.arange(1, len(top) + 1))
            cols = self._float_columns & ~np.isnan(top).any(axis=0)
            center[cols] = weights @ top[:, cols] / weights.sum()
        return center

    def _top(self, k: int) -> np.ndarray:
        """Vectors of the ``k`` best successful points, best first."""
        y = self._y.view()[:, 0]
        ok = np.flatnonzero(~np.isnan(y))
        k = min(k, ok.size)
        best = ok[np.argpartition(-y[ok], k - 1)[:k]]
        return self._vectors.view()[best[np.argsort(-y[best], kind="stable")]]

    def _adapt_radius(self, objectives: np.ndarray, best_before: float) -> None:
        """Trust-region step size from results of trust-region proposals, 1/5th success rule:
        grow by ``radius_grow`` on an improvement of the best objective, shrink by
        ``radius_grow ** -0.25`` otherwise (steady at a 20 % success rate); back to
        ``radius_init`` when it falls under ``radius_min``."""
        for value in objectives:
            if not np.isnan(value) and value > best_before:
                best_before = float(value)
                self._radius = min(self._radius * self.radius_grow, self.radius_max)
                self.num_region_gains += 1
            else:
                self._radius *= self.radius_grow ** -0.25
                if self._radius < self.radius_min:
                    self._radius = self.radius_init
                    self.num_radius_restarts += 1
