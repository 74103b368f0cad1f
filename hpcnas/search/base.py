"""The contract every search algorithm implements.

A search is a pure ask/tell object: it never runs anything, reads files or sleeps.

* ``ask(n)`` returns ``n`` new configurations (plain ``dict`` of JSON-safe values). It may be
  called again before earlier configurations are told (asynchronous search): the search
  must then still propose *different* points (AMBS uses a constant liar for this).
* ``tell(results)`` receives ``[(config, objective), ...]`` for finished evaluations, in any
  order. ``objective`` is a finite float to *maximise*, or ``None`` for a failed evaluation
  (crash, timeout, NaN). A search must accept configurations it never asked for (resume
  tells it the evaluations recorded earlier, and starting points).
* Several objectives (:meth:`Search.use_objectives`, ``--objectives``): a search that supports
  them (``supports_objectives``) is then told a sequence of ``k`` finite floats, all maximised,
  or ``None``; a row of another length or with a value that is not a finite number is told as
  a failure (:mod:`hpcnas.search.objectives`, :mod:`hpcnas.search.multiobjective`).
* Seeded: the same ``random_state`` and the same sequence of calls give the same asks.

Public ``ask``/``tell`` validate and keep the bookkeeping (counts, history); subclasses
implement ``_ask``/``_tell``. Algorithms register themselves with :func:`register_search`
so the CLI can build them by name without if/elif factories.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import numpy as np

from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.core.limits import check_seed

Config = dict[str, Any]

_REGISTRY: dict[tuple[str, str], type["Search"]] = {}


def register_search(family: str, name: str) -> Callable[[type["Search"]], type["Search"]]:
    """Class decorator: make a search available as ``hpcnas <family> <name>``."""

    def deco(cls: type[Search]) -> type[Search]:
        _REGISTRY[(family, name)] = cls
        cls.name = name
        return cls

    return deco


def search_names(family: str) -> list[str]:
    _import_builtin()
    return sorted(n for f, n in _REGISTRY if f == family)


def get_search_class(family: str, name: str) -> type["Search"]:
    _import_builtin()
    try:
        return _REGISTRY[(family, name)]
    except KeyError:
        raise UsageError(
            f"unknown {family} search '{name}': choose one of {', '.join(search_names(family))}"
        ) from None


def _import_builtin() -> None:
    import importlib

    for module in ("hpcnas.search.hps", "hpcnas.search.nas", "hpcnas.multifidelity.search"):
        try:
            package = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        # a package lists its search modules instead of importing them, so that
        # ``python -m package.search`` does not find itself imported already (runpy warning)
        for sub in getattr(package, "SEARCH_MODULES", ()):
            importlib.import_module(f"{module}.{sub}")


class Search(ABC):
    """Base class of all search algorithms (see the module docstring for the contract)."""

    name = "search"
    #: whether :meth:`use_objectives` accepts more than one objective
    supports_objectives = False

    def __init__(self, problem: Any, random_state: int | None = None, **kwargs: Any) -> None:
        if kwargs:
            raise UsageError(
                f"unknown option(s) for search '{self.name}': {', '.join(sorted(kwargs))}"
            )
        problem.check()
        check_seed(random_state)
        self.problem = problem
        self.random_state = random_state
        self.rng = np.random.default_rng(random_state)
        self.num_asked = 0
        self.num_told = 0
        self.history: list[tuple[Config, Any]] = []
        self.num_objectives = 1

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        """Add this search's own options to an ``argparse`` parser.

        Each option's ``dest`` must be the name of an ``__init__`` keyword argument, so the CLI
        can pass ``{dest: value}`` straight to the constructor (``--kappa`` -> ``kappa=``).
        """

    def restore(self, results: Sequence[Any]) -> None:
        """Called once on resume with the recorded :class:`~hpcnas.core.trial.EvalResult` s,
        before they are told: state beyond ``tell`` (a scheduler's rungs) is rebuilt here."""

    @classmethod
    def add_arguments_for(cls, parser: Any, argv: Sequence[str]) -> None:
        """Add the options for this command line: :meth:`add_arguments`, unless a search's
        options depend on another option (a multi-fidelity search adds its ``--searcher``'s)."""
        cls.add_arguments(parser)

    def use_objectives(self, k: int) -> None:
        """Optimise ``k`` objectives (call before the first ``ask``/``tell``); one line when this
        search optimises one objective only."""
        if k == self.num_objectives:
            return
        if k > 1 and not self.supports_objectives:
            raise UsageError(
                f"search '{self.name}' optimises one objective: --objectives {k} needs a multi-objective "
                "search (hpcnas hps ambs, age or random)"
            )
        if self.num_told or self.num_asked:
            raise HpcnasError("use_objectives() must be called before the search asks or is told anything")
        self.num_objectives = k
        self._use_objectives(k)

    def _use_objectives(self, k: int) -> None:
        """Prepare for ``k`` objectives (searches with ``supports_objectives``)."""

    # ----------------------------------------------------------------- public API
    def ask(self, n: int = 1) -> list[Config]:
        if n < 0:
            raise UsageError(f"ask(n) needs n >= 0, got {n}")
        if n == 0:
            return []
        configs = self._ask(n)
        self.num_asked += len(configs)
        return configs

    def tell(self, results: Sequence[tuple[Config, float | None]]) -> None:
        clean: list[tuple[Config, Any]] = []  # objective: a float, a tuple of them, or None
        for config, objective in results:
            if not isinstance(config, dict):
                raise HpcnasError(f"tell() needs (config dict, objective) pairs, got {config!r}")
            clean.append((config, _clean_objective(objective) if self.num_objectives == 1
                           else _clean_objectives(objective, self.num_objectives)))
        if not clean:
            return
        self.history.extend(clean)
        self.num_told += len(clean)
        self._tell(clean)

    def exclude(self, configs: Sequence[Config]) -> None:
        """Configurations being evaluated elsewhere (another agent of a decentralized search,
        :mod:`hpcnas.search.agents`): the search should not propose them. Their results, if any,
        come later through :meth:`tell`. Default: ignored (a search without a duplicate check)."""

    def evaluation_env(self) -> dict[str, str]:
        """Environment variables every evaluation of this search needs (a multi-fidelity search: its
        policy server's address and key). The search master hands them to the evaluator
        (:meth:`~hpcnas.evaluator.base.Evaluator.use_evaluation_env`), which carries them to the run
        side; the search never sets them in its own process. Default: none."""
        return {}

    def close(self) -> None:
        """Release what the search holds (threads, sockets); the search master calls it when its run
        ends (and the CLI at the end). No-op here."""

    @property
    def best(self) -> tuple[Config, float] | None:
        """The best configuration and objective told (several objectives: the best first objective)."""
        ok = [(c, y) for c, y in self.history if y is not None]
        if self.num_objectives > 1:
            ok = [(c, y[0]) for c, y in ok]
        return max(ok, key=lambda cy: cy[1]) if ok else None

    # ----------------------------------------------------------------- backend
    @abstractmethod
    def _ask(self, n: int) -> list[Config]:
        """Return exactly ``n`` configurations."""

    def _tell(self, results: list[tuple[Config, float | None]]) -> None:
        """Update the model with finished evaluations (history is already updated)."""


def _clean_objective(objective: Any) -> float | None:
    if objective is None or isinstance(objective, bool):
        return None
    try:
        value = float(objective)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _clean_objectives(objectives: Any, k: int) -> tuple[float, ...] | None:
    from hpcnas.search.objectives import check_values

    if objectives is None or check_values(objectives, k) is not None:
        return None
    return tuple(float(v) for v in objectives)
