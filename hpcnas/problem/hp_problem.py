"""Hyper-parameter search problems over a ConfigSpace ``ConfigurationSpace``.

Example (DeepHyper style)::

    from hpcnas.problem import HpProblem

    Problem = HpProblem()
    Problem.add_hyperparameter((-10.0, 10.0), "x")               # float
    Problem.add_hyperparameter((1, 64), "units")                 # int
    Problem.add_hyperparameter((1e-5, 1e-1, "log-uniform"), "lr")
    Problem.add_hyperparameter(["adam", "sgd"], "optimizer")     # categorical
    Problem.add_hyperparameter([16, 32, 64], "batch", ordinal=True)
    Problem.add_starting_point(x=0.0, units=8, lr=1e-3, optimizer="adam", batch=32)

The run function is ``run(config: dict) -> float`` and is *maximised*.

Cost: ConfigSpace rebuilds its whole graph at every ``add``, so adding N hyper-parameters one
by one costs O(N^2) (1,000 took 12 s on a 2-core machine, paid again by every worker that
imports the problem). :meth:`HpProblem.add_hyperparameter` therefore keeps new
hyper-parameters pending and hands them to ConfigSpace in one bulk ``add`` when the space is
next read (or a condition or forbidden clause is added): the space is the one ConfigSpace's
bulk add builds (``benchmarks/problem_build.py`` compares both).
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterable

import ConfigSpace as CS
import numpy as np

from hpcnas.core.errors import HpcnasError
from hpcnas.core.loading import load_attribute

_LOG_NAMES = {"log-uniform", "log", "loguniform"}
_UNIFORM_NAMES = {"uniform", "linear"}


class HpProblem:
    """A hyper-parameter search space with starting points, serialisable to JSON."""

    kind = "hp"

    def __init__(self, seed: int | None = None) -> None:
        self._cs = CS.ConfigurationSpace(seed=seed)
        self._pending: list[CS.hyperparameters.Hyperparameter] = []  # not yet added to self._cs
        self._names: set[str] = set()  # every hyper-parameter name, pending ones included
        self._starting_points: list[dict[str, Any]] = []

    @property
    def _space(self) -> CS.ConfigurationSpace:
        """The ConfigSpace space with every pending hyper-parameter added (one bulk ``add``)."""
        if self._pending:
            self._cs.add(self._pending)
            self._pending = []
        return self._cs

    @_space.setter
    def _space(self, space: CS.ConfigurationSpace) -> None:
        self._cs, self._pending, self._names = space, [], set(space.keys())

    # ------------------------------------------------------------------ building
    def add_hyperparameter(
        self,
        value: Any,
        name: str | None = None,
        default_value: Any = None,
        ordinal: bool = False,
    ) -> CS.hyperparameters.Hyperparameter:
        """Add one hyper-parameter and return the ConfigSpace object.

        ``value`` is ``(low, high)`` (int if both ints, else float), ``(low, high, "log-uniform")``,
        a list of choices (categorical, or ordinal with ``ordinal=True``), or a ready ConfigSpace
        hyper-parameter (then ``name`` is ignored).
        """
        if isinstance(value, CS.hyperparameters.Hyperparameter):
            hp = value
        else:
            if not name or not isinstance(name, str):
                raise HpcnasError("add_hyperparameter needs a name: add_hyperparameter(value, 'name')")
            hp = _make_hyperparameter(value, name, default_value, ordinal)
        if hp.name in self._names:
            raise HpcnasError(f"hyper-parameter '{hp.name}' is defined twice: give each a unique name")
        self._pending.append(hp)  # added to ConfigSpace in bulk when the space is read
        self._names.add(hp.name)
        return hp

    def add_dim(self, p_name: str, p_space: Any, default: Any = None) -> CS.hyperparameters.Hyperparameter:
        """DeepHyper 0.2's ``Problem.add_dim(name, space)``: :meth:`add_hyperparameter` (space, name)."""
        return self.add_hyperparameter(p_space, p_name, default_value=default)

    def add_hyperparameters(self, hyperparameters: Iterable[Any]) -> list[Any]:
        return [self.add_hyperparameter(hp) for hp in hyperparameters]

    def add_condition(self, condition: Any) -> None:
        """Add a ConfigSpace condition (``EqualsCondition``, ``InCondition``, conjunctions ...)."""
        self._space.add(condition)

    def add_conditions(self, conditions: Iterable[Any]) -> None:
        for c in conditions:
            self.add_condition(c)

    def add_forbidden_clause(self, clause: Any) -> None:
        """Add a ConfigSpace forbidden clause (``ForbiddenEqualsClause``, conjunctions ...)."""
        self._space.add(clause)

    def add_starting_point(self, **config: Any) -> None:
        """Add a configuration that searches evaluate first (checked against the space)."""
        self._starting_points.append(self.validate_config(config, what="starting point"))

    # ------------------------------------------------------------------ reading
    @property
    def space(self) -> CS.ConfigurationSpace:
        """The underlying ConfigSpace space (read-only use)."""
        return self._space

    @property
    def hyperparameter_names(self) -> list[str]:
        return list(self._space.keys())

    @property
    def default_configuration(self) -> dict[str, Any]:
        """The space's default configuration (DeepHyper 0.13's ``problem.default_configuration``)."""
        return dict(self._space.get_default_configuration())

    @property
    def starting_points(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self._starting_points]

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"HpProblem({len(self)} hyper-parameters: {', '.join(self.hyperparameter_names)})"

    def check(self) -> None:
        """Raise :class:`HpcnasError` when the problem cannot be searched."""
        if not self._names:
            raise HpcnasError(
                "the problem's search space has no hyper-parameters: add some with "
                "Problem.add_hyperparameter(...)"
            )

    def validate_config(self, config: dict[str, Any], what: str = "configuration") -> dict[str, Any]:
        """Return ``config`` as plain Python values, or raise naming what is wrong."""
        unknown = sorted(set(config) - set(self.hyperparameter_names))
        if unknown:
            raise HpcnasError(f"{what} has unknown hyper-parameters {unknown}; known: {self.hyperparameter_names}")
        try:
            cfg = CS.Configuration(self._space, values=dict(config))
            cfg.check_valid_configuration()
        except Exception as err:  # noqa: BLE001 - ConfigSpace raises many types
            raise HpcnasError(f"{what} {config} is not valid in the space: {err}") from err
        return to_python(dict(cfg))

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> list[dict[str, Any]]:
        """Draw ``n`` valid random configurations (conditions and forbidden clauses respected)."""
        if n <= 0:
            return []
        seed = _seed_from(rng)
        self._space.seed(seed)
        # size=None returns one Configuration; ConfigSpace warns when size=1 is asked for
        samples = [self._space.sample_configuration()] if n == 1 else self._space.sample_configuration(n)
        return [to_python(dict(s)) for s in samples]

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "space": self._space.to_serialized_dict(),
            "starting_points": self._starting_points,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HpProblem:
        problem = cls()
        problem._space = CS.ConfigurationSpace.from_serialized_dict(data["space"])
        problem._starting_points = [dict(p) for p in data.get("starting_points", [])]
        return problem

    @classmethod
    def from_json(cls, text: str) -> HpProblem:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise HpcnasError(f"problem JSON is malformed: {err}") from err
        return cls.from_dict(data)

    def fingerprint(self) -> str:
        """A stable short hash of the space: results of another problem are detected with it."""
        import hashlib

        return hashlib.sha1(json.dumps(self._space.to_serialized_dict(), sort_keys=True).encode()).hexdigest()[:12]


def _make_hyperparameter(value: Any, name: str, default: Any, ordinal: bool) -> Any:
    kwargs = {} if default is None else {"default": default}
    if isinstance(value, tuple):
        if len(value) not in (2, 3):
            raise HpcnasError(f"hyper-parameter '{name}': a range is (low, high) or (low, high, 'log-uniform')")
        low, high = value[0], value[1]
        prior = value[2] if len(value) == 3 else "uniform"
        if prior not in _LOG_NAMES | _UNIFORM_NAMES:
            raise HpcnasError(f"hyper-parameter '{name}': unknown prior '{prior}', use 'uniform' or 'log-uniform'")
        log = prior in _LOG_NAMES
        for bound in (low, high):
            if isinstance(bound, bool) or not isinstance(bound, (int, float, np.integer, np.floating)):
                raise HpcnasError(f"hyper-parameter '{name}': bounds must be numbers, got {value!r}")
            if not math.isfinite(float(bound)):
                raise HpcnasError(f"hyper-parameter '{name}': bounds must be finite, got {value!r}")
        if not low < high:
            raise HpcnasError(f"hyper-parameter '{name}': lower bound {low} must be below upper bound {high}")
        if log and low <= 0:
            raise HpcnasError(f"hyper-parameter '{name}': a log-uniform range needs lower bound > 0, got {low}")
        if isinstance(low, (int, np.integer)) and isinstance(high, (int, np.integer)):
            return CS.Integer(name, (int(low), int(high)), log=log, **kwargs)
        return CS.Float(name, (float(low), float(high)), log=log, **kwargs)
    if isinstance(value, list):
        if not value:
            raise HpcnasError(f"hyper-parameter '{name}': the list of choices is empty")
        if len(set(map(repr, value))) != len(value):
            raise HpcnasError(f"hyper-parameter '{name}': the list of choices has duplicates: {value}")
        if ordinal:
            return CS.OrdinalHyperparameter(name, value, **({"default_value": default} if default is not None else {}))
        return CS.Categorical(name, value, **kwargs)
    raise HpcnasError(
        f"hyper-parameter '{name}': cannot read {value!r}; use (low, high), (low, high, 'log-uniform') "
        "or a list of choices"
    )


def to_python(config: dict[str, Any]) -> dict[str, Any]:
    """Turn numpy scalars into plain Python values (JSON-safe)."""
    out: dict[str, Any] = {}
    for key, val in config.items():
        if isinstance(val, np.generic):
            val = val.item()
        out[key] = val
    return out


def _seed_from(rng: np.random.Generator | int | None) -> int:
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**31 - 1))
    if rng is None:
        return int(np.random.default_rng().integers(0, 2**31 - 1))
    return int(rng)


def load_problem(path: str) -> HpProblem:
    """Load ``package.module.Problem`` and check it is a usable problem.

    An :class:`HpProblem`, or an object with its interface (a ConfigSpace ``space`` and
    ``check`` / ``sample`` / ``validate_config`` methods, as :class:`~hpcnas.problem.NaProblem`).
    """
    problem = load_attribute(path, "problem")
    refuse_class(problem, path)
    if not isinstance(problem, HpProblem) and not _hp_like(problem):
        raise HpcnasError(
            f"problem '{path}' is a {type(problem).__name__}, not an HpProblem: "
            "define Problem = HpProblem() in that module"
        )
    problem.check()
    return problem


def refuse_class(problem: Any, path: str) -> None:
    """Raise when ``path`` names a class (``Problem = HpProblem``) instead of an instance of it."""
    if isinstance(problem, type):
        raise HpcnasError(
            f"problem '{path}' is the class {problem.__name__}, not an instance of it: "
            f"define Problem = {problem.__name__}() in that module"
        )


def _hp_like(problem: Any) -> bool:
    return isinstance(getattr(problem, "space", None), CS.ConfigurationSpace) and all(
        callable(getattr(problem, method, None)) for method in ("check", "sample", "validate_config")
    )
