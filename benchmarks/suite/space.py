"""One search-space description for every method of the suite.

A :class:`Space` is a list of :class:`Param` (float, int, categorical, ordinal grid), some of
them conditional on a categorical parent. The same description builds an hpcnas
:class:`~hpcnas.problem.HpProblem`, an Optuna define-by-run sampler, a scikit-optimize space
and a DeepHyper problem, so that every method searches exactly the same space with its own
natural types: ordinals are ordered grids (Optuna and scikit-optimize get the grid *index* as
an integer, which keeps the order), categoricals are unordered choices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

FLOAT, INT, CAT, ORD = "float", "int", "cat", "ord"


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple[Any, ...] = ()
    #: (parent name, parent values): active only when the parent takes one of the values
    condition: tuple[str, tuple[Any, ...]] | None = None

    @property
    def size(self) -> int:
        return len(self.choices)


def floats(prefix: str, dims: int, low: float, high: float) -> list[Param]:
    return [Param(f"{prefix}{i}", FLOAT, low, high) for i in range(dims)]


@dataclass
class Space:
    params: list[Param]
    _by_name: dict[str, Param] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {p.name: p for p in self.params}

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def active(self, param: Param, config: dict[str, Any]) -> bool:
        if param.condition is None:
            return True
        parent, values = param.condition
        return parent in config and config[parent] in values

    # ----------------------------------------------------------------- hpcnas
    def hp_problem(self) -> Any:
        import ConfigSpace as CS

        from hpcnas.problem import HpProblem

        problem = HpProblem()
        made = {}
        for p in self.params:
            if p.kind == FLOAT:
                value: Any = (float(p.low), float(p.high), "log-uniform") if p.log else (float(p.low), float(p.high))
                made[p.name] = problem.add_hyperparameter(value, p.name)
            elif p.kind == INT:
                value = (int(p.low), int(p.high), "log-uniform") if p.log else (int(p.low), int(p.high))
                made[p.name] = problem.add_hyperparameter(value, p.name)
            else:
                made[p.name] = problem.add_hyperparameter(list(p.choices), p.name, ordinal=p.kind == ORD)
        for p in self.params:
            if p.condition is not None:
                parent, values = p.condition
                cond = (
                    CS.EqualsCondition(made[p.name], made[parent], values[0])
                    if len(values) == 1
                    else CS.InCondition(made[p.name], made[parent], list(values))
                )
                problem.add_condition(cond)
        return problem

    # ----------------------------------------------------------------- Optuna
    def optuna_config(self, trial: Any) -> dict[str, Any]:
        """Define-by-run: suggest every active parameter, parents before children."""
        config: dict[str, Any] = {}
        for p in self.params:
            if not self.active(p, config):
                continue
            if p.kind == FLOAT:
                config[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
            elif p.kind == INT:
                config[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
            elif p.kind == CAT:
                config[p.name] = trial.suggest_categorical(p.name, list(p.choices))
            else:
                config[p.name] = p.choices[trial.suggest_int(p.name, 0, p.size - 1)]
        return config

    # ----------------------------------------------------------------- scikit-optimize
    def skopt_dimensions(self) -> list[Any]:
        """Flat space (conditions are ignored: inactive values are dropped from the config)."""
        from skopt.space import Categorical, Integer, Real

        dims: list[Any] = []
        for p in self.params:
            if p.kind == FLOAT:
                dims.append(Real(p.low, p.high, prior="log-uniform" if p.log else "uniform", name=p.name))
            elif p.kind == INT:
                dims.append(Integer(int(p.low), int(p.high), prior="log-uniform" if p.log else "uniform", name=p.name))
            elif p.kind == CAT:
                dims.append(Categorical(list(p.choices), name=p.name))
            else:
                dims.append(Integer(0, p.size - 1, name=p.name))
        return dims

    def from_flat(self, values: Sequence[Any]) -> dict[str, Any]:
        """Config from a flat list in parameter order (ordinals as indices); inactive dropped."""
        config: dict[str, Any] = {}
        for p, v in zip(self.params, values):
            if not self.active(p, config):
                continue
            if p.kind == ORD:
                config[p.name] = p.choices[int(v)]
            elif p.kind == INT:
                config[p.name] = int(v)
            elif p.kind == FLOAT:
                config[p.name] = float(v)
            else:
                config[p.name] = v
        return config
