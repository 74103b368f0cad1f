"""Mixed NAS searches: one HPS search over the flat space (``arch_<i>`` + hyper-parameters)."""
from __future__ import annotations

from typing import Any

from hpcnas.search.base import Config, Search
from hpcnas.search.nas._views import check_na_problem, flat_view


class MixedSearch(Search):
    """Runs ``inner_class`` (an HPS search) on :attr:`NaProblem.space` and maps configurations."""

    inner_class: Any = None

    def __init__(self, problem: Any, random_state: int | None = None, **kwargs: Any) -> None:
        check_na_problem(problem)
        inner_options = {k: kwargs.pop(k) for k in list(kwargs) if k in self.inner_options()}
        super().__init__(problem, random_state, **kwargs)
        self._inner = self.inner_class(flat_view(problem), random_state=int(self.rng.integers(0, 2**31 - 1)), **inner_options)

    @classmethod
    def inner_options(cls) -> set[str]:
        import inspect

        return {p for p in inspect.signature(cls.inner_class.__init__).parameters if p not in ("self", "problem", "random_state", "kwargs")}

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        cls.inner_class.add_arguments(parser)

    def _ask(self, n: int) -> list[Config]:
        return [self.problem.from_flat(c) for c in self._inner.ask(n)]

    def _tell(self, results: list[tuple[Config, float | None]]) -> None:
        self._inner.tell([(self.problem.to_flat(c), y) for c, y in results])
