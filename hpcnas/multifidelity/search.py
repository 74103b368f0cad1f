"""Multi-fidelity searches: a searcher proposes configurations, a stopping policy cuts them short.

``hpcnas hps asha --searcher ambs --min-resource 1 --max-resource 27 --reduction-factor 3 ...``
runs AMBS (BOHB-like: the surrogate learns from every trial's last objective) or random
search under ASHA; likewise ``pasha``, ``hyperband`` and ``sh`` (synchronous successive
halving). The run function reports per unit of resource with ``hpcnas.report(step, objective)``
and should train up to ``--max-resource`` units.

The search starts a :class:`~hpcnas.multifidelity.server.PolicyServer`; its address and key
(``HPCNAS_MF_ADDRESS``, ``HPCNAS_MF_AUTHKEY``) are the search's :meth:`evaluation_env`, which the
search master hands to the evaluator, and the evaluator to its evaluations (the local worker's run
message, the Ray task, the MPI ranks, the Balsam job's ``environ_vars``). The search sets nothing
in its own process's environment; it may be built before or after the evaluator. :meth:`close`
(called by the master when its run ends) stops the server.

``tell``: a trial stopped by the policy arrives from the master with its last reported objective;
one that arrives as a failure (``None``) but was stopped by the policy (its stop cut it short
as it failed) is told its last reported objective, so the model learns from early-stopped trials. :attr:`best` is the policy's answer: the best
configuration at the highest rung reached.
"""
from __future__ import annotations

from typing import Any, Sequence

from hpcnas.multifidelity import protocol
from hpcnas.multifidelity.policy import create_policy
from hpcnas.multifidelity.server import PolicyServer
from hpcnas.search.base import Config, Search, get_search_class, register_search

#: registered names of the multi-fidelity searches (schedulers, not searchers)
SCHEDULERS = ("asha", "pasha", "hyperband", "sh")
#: the searcher under a scheduler, chosen by mean rank on the suite's problems with learning
#: curves (``python -m benchmarks.suite.multifidelity``: ambs 1.70, age 1.80, random 2.50)
DEFAULT_SEARCHER = "ambs"


class MultiFidelitySearch(Search):
    """A searcher under a stopping policy (see the module docstring)."""

    policy_name = "asha"
    policy_options: tuple[str, ...] = ()

    def __init__(
        self,
        problem: Any,
        random_state: int | None = None,
        searcher: str = DEFAULT_SEARCHER,
        min_resource: float = 1,
        max_resource: float = 27,
        reduction_factor: float = 3,
        scheduler_host: str | None = None,
        barrier_timeout: float = 30.0,
        **options: Any,
    ) -> None:
        policy_options = {k: options.pop(k) for k in self.policy_options if k in options}
        super().__init__(problem, random_state)
        if searcher in SCHEDULERS:
            from hpcnas.core.errors import UsageError

            raise UsageError(f"--searcher {searcher} is a scheduler: choose a searcher such as random or ambs")
        # every other option is the searcher's (``--kappa`` for ambs ...); it rejects unknown ones
        self.searcher = get_search_class("hps", searcher)(problem, random_state=random_state, **options)
        self.policy = create_policy(
            self.policy_name,
            min_resource=min_resource,
            max_resource=max_resource,
            reduction_factor=reduction_factor,
            **policy_options,
        )
        self.server: PolicyServer | None = PolicyServer(self.policy, advertise=scheduler_host,
                                                        barrier_timeout=barrier_timeout)

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument("--searcher", default=DEFAULT_SEARCHER, metavar="NAME",
                            help=f"search that proposes configurations: random, ambs, age, ... (default {DEFAULT_SEARCHER})")
        parser.add_argument("--min-resource", dest="min_resource", type=float, default=1, metavar="R",
                            help="resource of the first rung, in report() steps (default 1)")
        parser.add_argument("--max-resource", dest="max_resource", type=float, default=27, metavar="R",
                            help="resource of the last rung: the run function trains this far (default 27)")
        parser.add_argument("--reduction-factor", dest="reduction_factor", type=float, default=3, metavar="ETA",
                            help="keep the top 1/ETA at each rung; rungs grow by ETA (default 3)")
        parser.add_argument("--scheduler-host", dest="scheduler_host", metavar="HOST",
                            help="address evaluations use to reach the scheduler (default: this host's IP)")

    @classmethod
    def add_arguments_for(cls, parser: Any, argv: Sequence[str]) -> None:
        """This scheduler's options and those of the ``--searcher`` named in ``argv``."""
        import argparse

        from hpcnas.core.errors import UsageError

        cls.add_arguments(parser)
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--searcher", default=DEFAULT_SEARCHER)
        name = pre.parse_known_args(list(argv))[0].searcher
        if name in SCHEDULERS:
            return  # refused with a clear message when the search is built
        try:
            searcher_cls = get_search_class("hps", name)
        except UsageError:
            return  # likewise
        searcher_cls.add_arguments(parser)

    def fit_in_background(self, enabled: bool = True) -> None:
        """Forwarded to the searcher (AMBS refits in a background thread on a real clock)."""
        forward = getattr(self.searcher, "fit_in_background", None)
        if callable(forward):
            forward(enabled)

    def evaluation_env(self) -> dict[str, str]:
        """The policy server's address and key, for every evaluation (none once closed)."""
        if self.server is None or self.server.closed:
            return {}
        return self.server.env()

    def close(self) -> None:
        """Stop the policy server (its trials and rungs stay readable: :attr:`best`)."""
        if getattr(self, "searcher", None) is not None:
            self.searcher.close()
        if getattr(self, "server", None) is not None:
            self.server.close()

    # ----------------------------------------------------------------- ask/tell
    def restore(self, results: Sequence[Any]) -> None:
        """Replay recorded learning curves (``results.csv``'s ``reports``) into the policy, so a
        resumed search judges new trials against the rungs reached before, not empty ones."""
        if self.server is None:
            return
        for result in results:
            trial = result.job_id  # the trial's name at the server, as when it ran
            for step, objective in result.reports:
                self.server.handle(protocol.REPORT, (trial, dict(result.config), step, objective))
            if result.reports:
                self.server.handle(protocol.END, (trial,))

    def tell(self, results: Sequence[tuple[Config, float | None]]) -> None:
        mapped = []
        for config, objective in results:
            if objective is None and self.server is not None:
                objective = self.server.stopped_objective(config)
                self.server.end_config(config)
            mapped.append((config, objective))
        super().tell(mapped)

    def _ask(self, n: int) -> list[Config]:
        return self.searcher.ask(n)

    def _tell(self, results: list[tuple[Config, float | None]]) -> None:
        self.searcher.tell(results)

    @property
    def best(self) -> tuple[Config, float] | None:
        best = self.policy.best()
        if best is None or self.server is None:
            return super().best
        trial, objective, _resource = best
        return self.server.configs.get(trial, {}), objective


@register_search("hps", "asha")
class ASHASearch(MultiFidelitySearch):
    """Asynchronous successive halving over a searcher (random, ambs, ...)."""

    policy_name = "asha"


@register_search("hps", "pasha")
class PASHASearch(MultiFidelitySearch):
    """Progressive ASHA: the maximum resource grows only while the top ranking keeps changing."""

    policy_name = "pasha"
    policy_options = ("epsilon", "epsilon_percentile")

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("--epsilon", type=float, metavar="EPS",
                            help="fixed ranking-noise threshold (default: estimated from crossing curves)")
        parser.add_argument("--epsilon-percentile", dest="epsilon_percentile", type=float, default=90.0,
                            metavar="P", help="percentile of crossing gaps used as epsilon (default 90)")


@register_search("hps", "sh")
class SuccessiveHalvingSearch(MultiFidelitySearch):
    """Synchronous successive halving in cohorts (cohort size <= number of workers)."""

    policy_name = "sh"
    policy_options = ("cohort_size",)

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("--cohort-size", dest="cohort_size", type=int, default=9, metavar="N",
                            help="trials per successive-halving cohort; at most the number of workers (default 9)")
        parser.add_argument("--barrier-timeout", dest="barrier_timeout", type=float, default=30.0, metavar="S",
                            help="decide a rung on the trials present after this wait (default 30 s)")


@register_search("hps", "hyperband")
class HyperbandSearch(MultiFidelitySearch):
    """Hyperband: successive-halving brackets with different minimum resources."""

    policy_name = "hyperband"
    policy_options = ("asynchronous",)

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("--asynchronous", action="store_true", default=None,
                            help="ASHA inside each bracket instead of synchronous successive halving")
        parser.add_argument("--barrier-timeout", dest="barrier_timeout", type=float, default=30.0, metavar="S",
                            help="decide a rung on the trials present after this wait (default 30 s)")
