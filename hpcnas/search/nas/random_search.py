"""``hpcnas nas random``: uniform random architectures and hyper-parameters (a baseline)."""
from __future__ import annotations

from typing import Any

from hpcnas.search.base import Config, Search, register_search
from hpcnas.search.nas._views import check_na_problem


@register_search("nas", "random")
class RandomNas(Search):
    """Uniform random search over architecture and searched hyper-parameters."""

    def __init__(self, problem: Any, random_state: int | None = None, **kwargs: Any) -> None:
        check_na_problem(problem)
        super().__init__(problem, random_state, **kwargs)
        self._starting = problem.starting_points

    def _ask(self, n: int) -> list[Config]:
        first, self._starting = self._starting[:n], self._starting[n:]
        return first + self.problem.sample(n - len(first), self.rng)


if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    sys.exit(module_main("nas", "random"))
