"""``hpcnas nas age``: aging (regularised) evolution of ``arch_seq`` with fixed hyper-parameters.

The first ``population_size`` architectures are random (after the problem's starting
points); then each ask draws ``sample_size`` members of the population, takes the best and
changes one of its choices to another value. Only the ``population_size`` most recent
successful evaluations form the population (the oldest die first). Training
hyper-parameters the problem searches are held at their defaults -- use ``agebo`` to
search them too. The evolution itself is :class:`hpcnas.search.hps.age.AgE` over the
architecture choices as categoricals.
"""
from __future__ import annotations

import argparse
from typing import Any

from hpcnas.problem.na_problem import ARCH_KEY
from hpcnas.search.base import Config, Search, register_search
from hpcnas.search.nas._views import arch_to_flat, arch_view, check_na_problem, default_hyperparameters, flat_to_arch


@register_search("nas", "age")
class AgE(Search):
    """Aging evolution over the architecture (hyper-parameters fixed)."""

    def __init__(
        self, problem: Any, random_state: int | None = None, population_size: int = 100, sample_size: int = 10, **kwargs: Any
    ) -> None:
        check_na_problem(problem)
        super().__init__(problem, random_state, **kwargs)
        from hpcnas.search.hps.age import AgE as _ArchEvolution

        self.population_size, self.sample_size = population_size, sample_size
        self._length = problem.arch_space.num_choices
        self._evolution = _ArchEvolution(
            arch_view(problem), random_state=self._child_seed(), population_size=population_size, sample_size=sample_size
        )
        self._fixed = default_hyperparameters(problem)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--population-size", dest="population_size", type=int, default=100,
                            help="architectures kept in the aging population (default: 100)")
        parser.add_argument("--sample-size", dest="sample_size", type=int, default=10,
                            help="members drawn to choose each parent, <= population size (default: 10)")

    def _child_seed(self) -> int:
        return int(self.rng.integers(0, 2**31 - 1))

    def _ask_archs(self, n: int) -> list[list[int]]:
        return [flat_to_arch(c, self._length) for c in self._evolution.ask(n)]

    def _hyperparameters(self, n: int) -> list[dict[str, Any]]:
        return [dict(self._fixed) for _ in range(n)]

    def _ask(self, n: int) -> list[Config]:
        archs, hps = self._ask_archs(n), self._hyperparameters(n)
        return [self.problem.make_config(a, h) for a, h in zip(archs, hps)]

    def _tell(self, results: list[tuple[Config, float | None]]) -> None:
        archs = [(arch_to_flat(c[ARCH_KEY]), y) for c, y in results if len(c.get(ARCH_KEY, ())) == self._length]
        self._evolution.tell(archs)


if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    sys.exit(module_main("nas", "age"))
