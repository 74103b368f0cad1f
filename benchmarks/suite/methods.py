"""Every method of the suite behind one asynchronous ask/tell interface.

A :class:`Method` asks one configuration at a time (``ask() -> (token, config)``) and is told
results by token, in any order, while other asks are still pending -- the way an evaluator
with several workers drives a search. hpcnas searches are used through their own
``ask``/``tell``; the peers through theirs (Optuna ``study.ask``/``study.tell``,
scikit-optimize ``Optimizer.ask``/``tell``, DeepHyper ``CBO.ask``/``tell``), all with their
default settings. Every method *maximises* ``-loss``.

Peers that cannot keep several asks pending apart are marked ``sequential``: the suite runs
them with one worker only (scikit-optimize's ``ask()`` returns the same point until it is
told; DeepHyper's CBO asks in batches from its own loop).
"""
from __future__ import annotations

import itertools
from typing import Any, Callable

from benchmarks.suite.space import Space


class Method:
    sequential = False

    def __init__(self, space: Space, seed: int) -> None:
        self.space, self.seed = space, seed
        self._tokens = itertools.count()
        self._pending: dict[int, Any] = {}  # token -> what the method needs back at tell time

    def ask(self) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def tell(self, token: int, objective: float) -> None:
        raise NotImplementedError

    def _hand_out(self, handle: Any, config: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        token = next(self._tokens)
        self._pending[token] = handle
        return token, config


class HpcnasMethod(Method):
    def __init__(self, space: Space, seed: int, search: str, options: dict[str, Any]) -> None:
        super().__init__(space, seed)
        from hpcnas.search import get_search_class

        import inspect

        cls = get_search_class("hps", search)
        params = inspect.signature(cls.__init__).parameters
        attrs = {k: v for k, v in options.items() if k not in params}
        unknown = [k for k in attrs if not hasattr(cls, k)]
        if unknown:
            raise ValueError(f"{search} has no option {', '.join(unknown)}")
        self.search = cls(space.hp_problem(), random_state=seed, **{k: v for k, v in options.items() if k in params})
        for k, v in attrs.items():  # class-level settings (e.g. random_share), for this run only
            setattr(self.search, k, v)

    def ask(self) -> tuple[int, dict[str, Any]]:
        config = self.search.ask(1)[0]
        return self._hand_out(config, config)

    def tell(self, token: int, objective: float) -> None:
        self.search.tell([(self._pending.pop(token), objective)])


class OptunaMethod(Method):
    def __init__(self, space: Space, seed: int, sampler: str = "tpe") -> None:
        super().__init__(space, seed)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        made = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
                "gp": lambda: optuna.samplers.GPSampler(seed=seed)}[sampler]()
        self.study = optuna.create_study(direction="maximize", sampler=made)

    def ask(self) -> tuple[int, dict[str, Any]]:
        trial = self.study.ask()
        return self._hand_out(trial, self.space.optuna_config(trial))

    def tell(self, token: int, objective: float) -> None:
        self.study.tell(self._pending.pop(token), objective)


class SkoptMethod(Method):
    sequential = True

    def __init__(self, space: Space, seed: int, estimator: str = "GP") -> None:
        super().__init__(space, seed)
        from skopt import Optimizer

        self.opt = Optimizer(space.skopt_dimensions(), base_estimator=estimator, random_state=seed)

    def ask(self) -> tuple[int, dict[str, Any]]:
        x = self.opt.ask()
        return self._hand_out(x, self.space.from_flat(x))

    def tell(self, token: int, objective: float) -> None:
        self.opt.tell(self._pending.pop(token), -objective)  # skopt minimises


class DeepHyperMethod(Method):
    sequential = True

    def __init__(self, space: Space, seed: int) -> None:
        super().__init__(space, seed)
        import logging
        import tempfile

        from deephyper.hpo import CBO, HpProblem

        logging.getLogger("deephyper").setLevel(logging.WARNING)
        problem = HpProblem(config_space=space.hp_problem().space)
        self._dir = tempfile.TemporaryDirectory()
        self.search = CBO(problem, random_state=seed, log_dir=self._dir.name, checkpoint_history_to_csv=False)

    def ask(self) -> tuple[int, dict[str, Any]]:
        config = self.search.ask(1)[0]
        return self._hand_out(config, {k: v for k, v in config.items() if not (isinstance(v, float) and v != v)})

    def tell(self, token: int, objective: float) -> None:
        self.search.tell([(self._pending.pop(token), objective)])


#: settings of the default ``ambs`` for a comparison run (``--ambs-option``; empty: the defaults)
AMBS_OPTIONS: dict[str, Any] = {}

#: method name -> (factory(space, seed), cost class): "cheap" methods run at the large budget,
#: "costly" ones (cubic-cost GPs, DeepHyper at ~1 s per ask) at the small one unless asked
METHODS: dict[str, tuple[Callable[[Space, int], Method], str]] = {
    "ambs": (lambda s, seed: HpcnasMethod(s, seed, "ambs", dict(AMBS_OPTIONS)), "cheap"),
    "ambs-et": (lambda s, seed: HpcnasMethod(s, seed, "ambs", {"surrogate_model": "ET"}), "cheap"),
    "ambs-gp": (lambda s, seed: HpcnasMethod(s, seed, "ambs", {"surrogate_model": "GP"}), "costly"),
    "age": (lambda s, seed: HpcnasMethod(s, seed, "age", {}), "cheap"),
    "random": (lambda s, seed: HpcnasMethod(s, seed, "random", {}), "cheap"),
    "optuna-tpe": (lambda s, seed: OptunaMethod(s, seed, "tpe"), "cheap"),
    "optuna-gp": (lambda s, seed: OptunaMethod(s, seed, "gp"), "costly"),
    "skopt-gp": (lambda s, seed: SkoptMethod(s, seed, "GP"), "costly"),
    "skopt-rf": (lambda s, seed: SkoptMethod(s, seed, "RF"), "costly"),
    "deephyper-cbo": (lambda s, seed: DeepHyperMethod(s, seed), "costly"),
}
HPCNAS_METHODS = ("ambs", "ambs-et", "ambs-gp", "age", "random")


def available(name: str) -> str | None:
    """None when the method's package imports, else why not (a missing peer is reported)."""
    need = {"optuna-tpe": "optuna", "optuna-gp": "torch", "skopt-gp": "skopt", "skopt-rf": "skopt",
            "deephyper-cbo": "deephyper"}.get(name)
    if need is None:
        return None
    import importlib.util

    return None if importlib.util.find_spec(need) else f"{need} is not installed"
