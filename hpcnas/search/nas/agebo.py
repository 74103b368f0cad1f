"""``hpcnas nas agebo``: aging evolution for the architecture, Bayesian optimisation for training.

Each configuration pairs an architecture from aging evolution (see :mod:`.age`) with training
hyper-parameters (batch size, learning rate, ranks, ...) proposed by asynchronous model-based
search: :class:`hpcnas.search.hps.ambs.AMBS` over the problem's searched hyper-parameters,
with its surrogate (``--surrogate-model``), acquisition (``--acq-func``, ``--kappa``), constant
liar for pending points and ``--n-jobs`` surrogate fitting processes. Both learn from every
result: the evolution from ``(arch_seq, objective)``, the BO from ``(hyper-parameters,
objective)`` -- the architecture's effect acts as noise for the BO, as in AgEBO.
A problem without searched hyper-parameters makes AgEBO plain AgE.
"""
from __future__ import annotations

import argparse
from typing import Any

from hpcnas.search.base import Config, register_search
from hpcnas.search.nas._views import hp_view
from hpcnas.search.nas.age import AgE


@register_search("nas", "agebo")
class AgEBO(AgE):
    """Aging evolution (architecture) + Bayesian optimisation (hyper-parameters)."""

    def __init__(
        self,
        problem: Any,
        random_state: int | None = None,
        population_size: int = 100,
        sample_size: int = 10,
        kappa: float = 0.001,
        n_jobs: int = 1,
        surrogate_model: str = "RF",
        acq_func: str = "UCB",
        xi: float = 0.001,
        liar_strategy: str = "none",
        n_initial_points: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(problem, random_state, population_size, sample_size, **kwargs)
        from hpcnas.search.hps.ambs import AMBS

        self.kappa, self.n_jobs = kappa, n_jobs
        self._names = problem.searched_hyperparameters
        self._bo = None
        if self._names:
            self._bo = AMBS(
                hp_view(problem), random_state=self._child_seed(), surrogate_model=surrogate_model, acq_func=acq_func,
                kappa=kappa, xi=xi, liar_strategy=liar_strategy, n_jobs=n_jobs, n_initial_points=n_initial_points,
            )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--kappa", dest="kappa", type=float, default=0.001,
                            help="UCB exploration weight of the hyper-parameter BO (default: 0.001)")
        parser.add_argument("--n-jobs", dest="n_jobs", type=int, default=1,
                            help="processes used to fit the surrogate (-1: all cores; default: 1)")
        parser.add_argument("--surrogate-model", dest="surrogate_model", default="RF", choices=["RF", "ET", "GP"],
                            help="surrogate of the hyper-parameter BO (default: RF)")
        parser.add_argument("--acq-func", dest="acq_func", default="UCB", choices=["UCB", "EI", "PI"],
                            help="acquisition function (default: UCB)")
        parser.add_argument("--n-initial-points", dest="n_initial_points", type=int, default=10,
                            help="random hyper-parameter points before the BO model is used (default: 10)")

    def _hyperparameters(self, n: int) -> list[dict[str, Any]]:
        if self._bo is None:
            return super()._hyperparameters(n)
        return self._bo.ask(n)

    def _tell(self, results: list[tuple[Config, float | None]]) -> None:
        super()._tell(results)
        if self._bo is not None:
            known = [({k: c[k] for k in self._names}, y) for c, y in results if all(k in c for k in self._names)]
            self._bo.tell(known)


if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    sys.exit(module_main("nas", "agebo"))
