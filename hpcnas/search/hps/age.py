"""AgE: aging (regularised) evolution, asynchronous.

* The problem's starting points and random configurations are asked until
  ``population_size`` evaluations have succeeded.
* Then each ask draws ``sample_size`` members of the population at random, takes the best as
  parent and returns a *mutant*: one active hyper-parameter changed according to its type
  (floats and integers move by a Gaussian step of ``mutation_scale`` on the normalised scale --
  the log scale for log ranges -- integers at least one grid step; ordinals move to a
  neighbouring value; categoricals switch to another choice). The mutant is repaired to satisfy
  the conditions (children that become active get a random value) and forbidden clauses.
* Each successful evaluation joins the population; when it is full the *oldest* member leaves
  (aging), whatever its objective. Failed evaluations (objective ``None``) never join the
  population, so they have no offspring.

Asks are independent of pending evaluations, so any number of workers can be kept busy.

Several objectives (``--objectives``): the population keeps each member's objectives and still
ages out the oldest; the parent of a tournament is the drawn member that NSGA-II's crowded
comparison prefers, ranked over the whole population (the lowest non-dominated front, then the
largest crowding distance, :mod:`hpcnas.search.multiobjective`).
"""
from __future__ import annotations

import argparse
import math
from collections import deque
from typing import Any

import numpy as np

from hpcnas.core.errors import UsageError
from hpcnas.core.limits import MAX_COUNT
from hpcnas.search.base import register_search
from hpcnas.search.hps._base import HpSearch
from hpcnas.search.multiobjective import selection_keys, tournament_winner


@register_search("hps", "age")
class AgE(HpSearch):
    """Aging evolution (see the module docstring)."""

    pareto_based = True

    def __init__(
        self,
        problem: Any,
        random_state: int | None = None,
        population_size: int = 100,
        sample_size: int = 10,
        mutation_scale: float = 0.1,
        **kwargs: Any,
    ) -> None:
        if not isinstance(population_size, int) or not 1 <= population_size <= MAX_COUNT:
            raise UsageError(f"--population-size must be an integer from 1 to {MAX_COUNT}, got {population_size}")
        if not isinstance(sample_size, int) or sample_size < 1:
            raise UsageError(f"--sample-size must be an integer >= 1, got {sample_size}")
        if sample_size > population_size:
            raise UsageError(
                f"--sample-size ({sample_size}) cannot exceed --population-size ({population_size}): "
                "lower the sample size or raise the population size"
            )
        if not (isinstance(mutation_scale, (int, float)) and math.isfinite(mutation_scale) and mutation_scale > 0):
            raise UsageError(f"--mutation-scale must be a number > 0, got {mutation_scale}")
        super().__init__(problem, random_state, **kwargs)
        self.population_size, self.sample_size = population_size, sample_size
        self.mutation_scale = float(mutation_scale)
        #: (vector, objective): a float, or an array of them with several objectives
        self.population: deque[tuple[np.ndarray, Any]] = deque(maxlen=population_size)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--population-size", dest="population_size", type=int, default=100,
                            help="members kept in the aging population (default: 100)")
        parser.add_argument("--sample-size", dest="sample_size", type=int, default=10,
                            help="members drawn to choose each parent, <= population size (default: 10)")
        parser.add_argument("--mutation-scale", dest="mutation_scale", type=float, default=0.1,
                            help="std of numeric mutations on the normalised [0, 1] scale (default: 0.1)")

    def _propose(self, n: int) -> np.ndarray:
        if len(self.population) < self.population_size:
            return self.codec.sample(n)
        members = list(self.population)
        rs = self.codec.rs
        parents = np.empty((n, self.codec.dim))
        keys = selection_keys(np.array([m[1] for m in members])) if self.scalarizer is not None else None
        for i in range(n):
            drawn = rs.choice(len(members), size=self.sample_size, replace=False)
            parents[i] = members[self._winner(members, drawn, keys)][0]
        children = []
        for _ in range(20):  # forbidden mutants are redrawn from the same parents
            kids = self.codec.repair(self.codec.mutate(parents, 1, self.mutation_scale))
            children.append(kids)
            if sum(map(len, children)) >= n:
                break
            parents = parents[: n - sum(map(len, children))]
        children.append(self.codec.sample(max(0, n - sum(map(len, children)))))
        return np.concatenate(children)[:n]

    def _observe(self, vectors: np.ndarray, objectives: np.ndarray, pending: np.ndarray) -> None:
        for vec, y in zip(vectors, objectives):
            if not np.isnan(y).any():
                self.population.append((vec, float(y) if np.ndim(y) == 0 else np.array(y)))

    @staticmethod
    def _winner(members: list[tuple[np.ndarray, Any]], drawn: np.ndarray, keys: Any) -> int:
        """The parent among the ``drawn`` members: the best objective, or with several objectives
        NSGA-II's crowded comparison over the population (lowest Pareto rank, then the largest
        crowding distance)."""
        if keys is not None:
            return tournament_winner(drawn, *keys)
        return max(drawn, key=lambda k: members[k][1])


if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    sys.exit(module_main("hps", "age"))
