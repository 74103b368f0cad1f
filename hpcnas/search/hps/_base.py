"""Shared bookkeeping of the HPS searches: starting points first, no duplicate asks.

:class:`HpSearch` implements ``_ask``/``_tell`` of :class:`~hpcnas.search.base.Search` and
leaves two hooks to the algorithms:

* ``_propose(n) -> (n, dim) vectors`` -- new points (the base drops duplicates of points
  already asked or told and asks again, a bounded number of times),
* ``_observe(vectors, objectives, pending)`` -- finished evaluations as vectors with
  ``NaN`` objectives for failures; ``pending[i]`` says whether row ``i`` was asked by this
  search and not yet told (so an algorithm can undo what it did at ask time).

Starting points of the problem are returned by the first asks, before any proposal.

Several objectives (``use_objectives(k)``): the base keeps every row of objectives told
(``_told_objectives``) and hands ``_observe`` either that ``(n, k)`` matrix (algorithms with
``pareto_based``, AgE) or its random augmented Chebyshev scalarization
(:class:`~hpcnas.search.multiobjective.Scalarizer`; AMBS redraws its weights at each refit
with :meth:`HpSearch.rescalarized`).
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, Sequence

import numpy as np

from hpcnas.core.errors import HpcnasError
from hpcnas.search.base import Config, Search
from hpcnas.search.hps.encoding import SpaceCodec
from hpcnas.search.multiobjective import Scalarizer, as_matrix


class HpSearch(Search):
    """Base class of the hyper-parameter searches (random, AMBS, AgE)."""

    #: proposal rounds before duplicates are accepted (tiny discrete spaces)
    max_duplicate_rounds = 10
    supports_objectives = True
    #: several objectives: ``_observe`` gets the objective matrix (else one scalarized column)
    pareto_based = False

    def __init__(self, problem: Any, random_state: int | None = None, **kwargs: Any) -> None:
        super().__init__(problem, random_state, **kwargs)
        self.codec = SpaceCodec(problem.space, seed=int(self.rng.integers(0, 2**31 - 1)))
        self._starting = [dict(p) for p in problem.starting_points]
        self._seen: set[bytes] = set()
        self._pending: dict[bytes, int] = {}  # key -> number of asks not told yet
        self.scalarizer: Scalarizer | None = None
        self._told_objectives: list[np.ndarray] = []  # several objectives: every told row

    def _use_objectives(self, k: int) -> None:
        self.scalarizer = Scalarizer(k, np.random.default_rng(int(self.rng.integers(0, 2**31 - 1))))

    # ----------------------------------------------------------------- Search hooks
    def _ask(self, n: int) -> list[Config]:
        vectors: list[np.ndarray] = []
        while self._starting and len(vectors) < n:
            vec = self.codec.to_vectors([self._starting.pop(0)])[0]
            if self._accept(vec):
                vectors.append(vec)
        rounds = 0
        while len(vectors) < n:
            proposed = self._propose(n - len(vectors))
            rounds += 1
            force = rounds > self.max_duplicate_rounds
            for vec in proposed:
                if len(vectors) < n and (self._accept(vec) or force):
                    if force:
                        self._mark(vec)
                    vectors.append(vec)
        return self.codec.to_configs(np.array(vectors))

    def _tell(self, results: list[tuple[Config, float | None]]) -> None:
        vectors = self.codec.to_vectors([c for c, _ in results])
        if self.scalarizer is not None:
            rows = as_matrix([y for _, y in results], self.num_objectives)
            self._told_objectives.extend(rows)
            objectives = rows if self.pareto_based else self.scalarizer.scalarize(rows)
        else:
            objectives = np.array([np.nan if y is None else y for _, y in results], dtype=float)
        pending = np.zeros(len(results), dtype=bool)
        for i, key in enumerate(self.codec.keys(vectors)):
            self._seen.add(key)
            count = self._pending.get(key, 0)
            if count:
                pending[i] = True
                if count == 1:
                    del self._pending[key]
                else:
                    self._pending[key] = count - 1
        self._observe(vectors, objectives, pending)

    def exclude(self, configs: Sequence[Config]) -> None:
        """Never propose these configurations (they count as asked elsewhere, not by this search)."""
        for config in configs:
            try:
                key = self.codec.keys(self.codec.to_vectors([dict(config)]))[0]
            except HpcnasError:
                continue  # not a point of this space (another problem's claim): nothing to exclude
            self._seen.add(key)

    # ----------------------------------------------------------------- helpers
    def rescalarized(self) -> np.ndarray:
        """Several objectives: new scalarization weights and bounds; every told row scalarized
        with them, in the order told (``NaN`` for failures)."""
        assert self.scalarizer is not None
        rows = np.array(self._told_objectives).reshape(-1, self.num_objectives)
        return self.scalarizer.redraw(rows)

    def _accept(self, vec: np.ndarray) -> bool:
        key = self.codec.keys(vec)[0]
        if key in self._seen:
            return False
        self._mark(vec, key)
        return True

    def _mark(self, vec: np.ndarray, key: bytes | None = None) -> None:
        key = key if key is not None else self.codec.keys(vec)[0]
        self._seen.add(key)
        self._pending[key] = self._pending.get(key, 0) + 1
        self._on_asked(vec)

    def _is_seen(self, vectors: np.ndarray) -> np.ndarray:
        return np.array([k in self._seen for k in self.codec.keys(vectors)], dtype=bool)

    # ----------------------------------------------------------------- algorithm hooks
    @abstractmethod
    def _propose(self, n: int) -> np.ndarray:
        """Return about ``n`` new valid vectors (more or fewer is fine)."""

    def _on_asked(self, vector: np.ndarray) -> None:
        """Called for each vector handed out by ``ask`` (e.g. to add a constant lie)."""

    def _observe(self, vectors: np.ndarray, objectives: np.ndarray, pending: np.ndarray) -> None:
        """Learn from finished evaluations (``NaN`` objective = failed)."""
