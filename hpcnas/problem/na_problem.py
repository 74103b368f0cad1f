"""Neural architecture search problems: data, architecture space, hyper-parameters, objective.

Example (AgEBO style: architecture and training hyper-parameters searched together)::

    from hpcnas.problem import NaProblem

    Problem = NaProblem()
    Problem.load_data("hpcnas.nas.problems.combo.load_data", n_samples=2000)
    Problem.search_space("hpcnas.nas.problems.combo.create_search_space", num_layers=3)
    Problem.hyperparameters(
        batch_size=Problem.add_hyperparameter((16, 256, "log-uniform"), "batch_size"),
        learning_rate=Problem.add_hyperparameter((1e-4, 1e-1, "log-uniform"), "learning_rate"),
        optimizer="adam", num_epochs=5, num_ranks=1,
    )
    Problem.loss("mse")
    Problem.metrics(["r2"])
    Problem.objective("val_r2__last")   # or "-val_loss", "val_acc__max", ...

Contracts:

* ``load_data(**kwargs) -> ((x_train, y_train), (x_valid, y_valid))``; ``x`` is an array or a
  list of arrays (one per model input).
* ``search_space(input_shape, output_shape, **kwargs) -> ArchSpace``.
* Functions are stored as dotted paths, so the problem is JSON (:meth:`to_json`) and any
  process -- a local worker, a Balsam job, an MPI rank -- rebuilds it (:meth:`from_dict`).
* A configuration is ``{"arch_seq": [int, ...], <searched hyper-parameters>, <num_ranks /
  num_gpus when set>, "problem": <reference>}``; ``problem`` is the problem's dotted path
  (or its JSON description when it has none), so a generic run function such as
  ``hpcnas.nas.run.alpha.run`` can rebuild it. Searches build configurations with
  :meth:`make_config`.
* The HpProblem-like view (``space``, ``check``, ``sample``, ``validate_config``,
  ``fingerprint``) lets the master and the CLI treat it like an :class:`HpProblem`; ``space``
  is flat: ``arch_0 .. arch_{k-1}`` integers followed by the searched hyper-parameters.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from typing import Any, Callable, Sequence

import ConfigSpace as CS
import numpy as np

from hpcnas.core.errors import HpcnasError
from hpcnas.core.loading import load_attribute
from hpcnas.problem.hp_problem import HpProblem, to_python

#: hyper-parameters understood by the run functions, with their defaults
HYPERPARAMETER_DEFAULTS: dict[str, Any] = {
    "batch_size": 32,
    "learning_rate": 1e-3,
    "optimizer": "adam",
    "num_epochs": 1,
    "num_ranks": 1,
    "num_gpus": 0,
    "num_threads": None,
    "lsr_batch_size": False,
    "lsr_learning_rate": False,
    "warmup_lr": False,
    "warmup_epochs": 0,
    "shuffle": True,
    "verbose": 0,
}
#: configuration keys the evaluators read as resources; copied into configs even when fixed
RESOURCE_KEYS = ("num_ranks", "num_gpus")
ARCH_KEY, PROBLEM_KEY = "arch_seq", "problem"
_OBJECTIVE_RE = re.compile(r"^(-)?([A-Za-z_][A-Za-z0-9_]*?)(?:__(last|max))?$")


class NaProblem:
    """A neural architecture search problem (see the module docstring)."""

    kind = "na"

    def __init__(self, seed: int | None = None, reference: str | None = None) -> None:
        self.seed = seed
        self._hp = HpProblem(seed=seed)
        self._load_data: tuple[str, dict[str, Any]] | None = None
        self._space_fn: tuple[str, dict[str, Any]] | None = None
        self._fixed: dict[str, Any] = {}
        self._loss: str = "mse"
        self._metrics: list[str] = []
        self._objective = "-val_loss__last"
        self._shapes: tuple[Any, Any] | None = None
        self._starting_points: list[dict[str, Any]] = []
        self._reference = reference
        self._module = sys._getframe(1).f_globals.get("__name__") if reference is None else None
        self._arch_space: Any = None

    # ------------------------------------------------------------------ building
    def load_data(self, func: str | Callable[..., Any], **kwargs: Any) -> None:
        self._load_data = (_function_path(func, "data loader"), _json_kwargs(kwargs, "load_data"))
        self._arch_space = None

    def search_space(self, func: str | Callable[..., Any], **kwargs: Any) -> None:
        self._space_fn = (_function_path(func, "search space"), _json_kwargs(kwargs, "search_space"))
        self._arch_space = None

    def shapes(self, input_shape: Any, output_shape: Any) -> None:
        """Declare the data shapes, so the space is built without loading the data."""
        self._shapes = (_plain(input_shape), _plain(output_shape))
        self._arch_space = None

    def add_hyperparameter(self, value: Any, name: str, default_value: Any = None, ordinal: bool = False) -> Any:
        """Make ``name`` a searched hyper-parameter (same forms as :meth:`HpProblem.add_hyperparameter`)."""
        if name in (ARCH_KEY, PROBLEM_KEY) or name.startswith("arch_"):
            raise HpcnasError(f"'{name}' is reserved for the architecture: choose another hyper-parameter name")
        return self._hp.add_hyperparameter(value, name, default_value, ordinal)

    def hyperparameters(self, **values: Any) -> None:
        """Set training hyper-parameters: fixed values, or objects from :meth:`add_hyperparameter`."""
        unknown = sorted(set(values) - set(HYPERPARAMETER_DEFAULTS))
        if unknown:
            raise HpcnasError(f"unknown hyper-parameter(s) {unknown}: known are {sorted(HYPERPARAMETER_DEFAULTS)}")
        for key, value in values.items():
            if isinstance(value, CS.hyperparameters.Hyperparameter):
                if value.name != key:
                    raise HpcnasError(f"hyperparameters({key}=...) got the searched hyper-parameter '{value.name}': name it '{key}'")
                if value.name not in self._hp.space:
                    self._hp.add_hyperparameter(value)
                self._fixed.pop(key, None)
            else:
                self._fixed[key] = _plain(value)

    def loss(self, loss: str) -> None:
        if not isinstance(loss, str) or not loss:
            raise HpcnasError("loss must be a Keras loss name such as 'mse' or 'binary_crossentropy'")
        self._loss = loss

    def metrics(self, metrics: Sequence[str]) -> None:
        if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
            raise HpcnasError("metrics must be a list of names, e.g. ['r2'] or ['acc', 'auc']")
        self._metrics = list(metrics)

    def objective(self, spec: str) -> None:
        """``[-]<logged metric>[__last|__max]``, maximised: ``val_r2__last``, ``-val_loss``, ``val_acc__max``."""
        parse_objective(spec)
        self._objective = spec

    def add_starting_point(self, arch_seq: Sequence[int], **hyperparameters: Any) -> None:
        self._starting_points.append({ARCH_KEY: list(arch_seq), **hyperparameters})

    # ------------------------------------------------------------------ reading
    @property
    def loss_name(self) -> str:
        return self._loss

    @property
    def metric_names(self) -> list[str]:
        return list(self._metrics)

    @property
    def objective_spec(self) -> str:
        return self._objective

    @property
    def hp_problem(self) -> HpProblem:
        """The searched training hyper-parameters alone (what AgEBO's BO optimises)."""
        return self._hp

    @property
    def searched_hyperparameters(self) -> list[str]:
        return self._hp.hyperparameter_names

    @property
    def fixed_hyperparameters(self) -> dict[str, Any]:
        return dict(self._fixed)

    def hyperparameters_of(self, config: dict[str, Any]) -> dict[str, Any]:
        """All training hyper-parameters for ``config``: defaults < fixed < searched values."""
        hps = dict(HYPERPARAMETER_DEFAULTS)
        hps.update(self._fixed)
        hps.update({k: config[k] for k in self.searched_hyperparameters if k in config})
        for key in RESOURCE_KEYS:
            if key in config:
                hps[key] = config[key]
        return hps

    @property
    def reference(self) -> str | None:
        """``package.module.Name`` under which other processes can import this problem."""
        if self._reference:
            return self._reference
        module = sys.modules.get(self._module or "")
        if module is None or self._module == "__main__" or self._module.startswith("_hpcnas_user_"):
            return None
        for attr, value in vars(module).items():
            if value is self:
                self._reference = f"{self._module}.{attr}"
                return self._reference
        return None

    def input_output_shapes(self) -> tuple[Any, Any]:
        if self._shapes is None:
            (x, y), _ = self.load()
            xs = x if isinstance(x, (list, tuple)) else [x]
            in_shapes = [tuple(np.shape(a)[1:]) for a in xs]
            self._shapes = (in_shapes if len(in_shapes) > 1 else in_shapes[0], tuple(np.shape(y)[1:]) or (1,))
        return self._shapes

    def load(self) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        """Call the data loader: ``((x_train, y_train), (x_valid, y_valid))``."""
        if self._load_data is None:
            raise HpcnasError("the problem has no data loader: call Problem.load_data(func, ...)")
        path, kwargs = self._load_data
        data = load_attribute(path, "data loader")(**kwargs)
        try:
            (x_tr, y_tr), (x_va, y_va) = data
        except (TypeError, ValueError):
            raise HpcnasError(f"data loader '{path}' must return ((x_train, y_train), (x_valid, y_valid))") from None
        return (x_tr, y_tr), (x_va, y_va)

    @property
    def arch_space(self) -> Any:
        """The :class:`~hpcnas.nas.space.ArchSpace` built for the data shapes (cached)."""
        if self._arch_space is None:
            from hpcnas.nas.space import ArchSpace

            if self._space_fn is None:
                raise HpcnasError("the problem has no search space: call Problem.search_space(func, ...)")
            path, kwargs = self._space_fn
            in_shape, out_shape = self.input_output_shapes()
            space = load_attribute(path, "search space")(in_shape, out_shape, **kwargs)
            if not isinstance(space, ArchSpace):
                raise HpcnasError(f"search space function '{path}' returned {type(space).__name__}, not an ArchSpace")
            if space.num_choices == 0:
                raise HpcnasError(f"search space '{path}' has no choices: add variable or skip nodes")
            self._arch_space = space
        return self._arch_space

    # ------------------------------------------------------------------ HpProblem-like view
    @property
    def space(self) -> CS.ConfigurationSpace:
        """Flat ConfigSpace: ``arch_<i>`` categoricals (choices ``0..n-1``), then the searched hyper-parameters."""
        flat = CS.ConfigurationSpace(seed=self.seed)
        for hp in arch_hyperparameters(self.arch_space.choice_sizes):
            flat.add(hp)
        for hp in self._hp.space.values():
            flat.add(hp)
        for cond in self._hp.space.conditions:
            flat.add(cond)
        for clause in self._hp.space.forbidden_clauses:
            flat.add(clause)
        return flat

    @property
    def hyperparameter_names(self) -> list[str]:
        resources = [k for k in RESOURCE_KEYS if k in self._fixed and k not in self.searched_hyperparameters]
        return [ARCH_KEY, *self.searched_hyperparameters, *resources]

    @property
    def starting_points(self) -> list[dict[str, Any]]:
        return [self.validate_config(self.make_config(p[ARCH_KEY], p), "starting point") for p in self._starting_points]

    def check(self) -> None:
        """Raise :class:`HpcnasError` when the problem cannot be searched or evaluated elsewhere."""
        if self._load_data is None:
            raise HpcnasError("the problem has no data loader: call Problem.load_data(func, ...)")
        _ = self.arch_space
        _ = self.starting_points  # validates them

    def make_config(self, arch_seq: Sequence[int], hyperparameters: dict[str, Any] | None = None) -> dict[str, Any]:
        """The configuration a run function receives (see the module docstring)."""
        hps = hyperparameters or {}
        config: dict[str, Any] = {ARCH_KEY: [int(v) for v in arch_seq]}
        config.update({k: hps[k] for k in self.searched_hyperparameters if k in hps})
        for key in RESOURCE_KEYS:
            if key in self._fixed and key not in config:
                config[key] = self._fixed[key]
        config[PROBLEM_KEY] = self.reference or self.to_dict()
        return to_python(config)

    def split_config(self, config: dict[str, Any]) -> tuple[list[int], dict[str, Any]]:
        """``(arch_seq, searched hyper-parameters)`` of a configuration."""
        return list(config[ARCH_KEY]), {k: config[k] for k in self.searched_hyperparameters if k in config}

    def to_flat(self, config: dict[str, Any]) -> dict[str, Any]:
        arch, hps = self.split_config(config)
        return {**{f"arch_{i}": v for i, v in enumerate(arch)}, **hps}

    def from_flat(self, flat: dict[str, Any]) -> dict[str, Any]:
        arch = [int(flat.get(f"arch_{i}", 0)) for i in range(self.arch_space.num_choices)]
        return self.make_config(arch, {k: v for k, v in flat.items() if not k.startswith("arch_")})

    def validate_config(self, config: dict[str, Any], what: str = "configuration") -> dict[str, Any]:
        if ARCH_KEY not in config:
            raise HpcnasError(f"{what} has no '{ARCH_KEY}': NAS configurations need an architecture")
        allowed = {ARCH_KEY, PROBLEM_KEY, *self.searched_hyperparameters, *RESOURCE_KEYS}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise HpcnasError(f"{what} has unknown keys {unknown}; known: {sorted(allowed)}")
        arch = self.arch_space.validate(config[ARCH_KEY])
        hps = {k: config[k] for k in self.searched_hyperparameters if k in config}
        hps = self._hp.validate_config(hps, what) if self.searched_hyperparameters else {}
        out = self.make_config(arch, hps)
        for key in RESOURCE_KEYS:
            if key in config:
                out[key] = to_python({key: config[key]})[key]
        return out

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> list[dict[str, Any]]:
        """``n`` random configurations (uniform architecture, hyper-parameters from their space)."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        hps = self._hp.sample(n, rng) if self.searched_hyperparameters else [{} for _ in range(n)]
        return [self.make_config(self.arch_space.sample(rng), h) for h in hps]

    def fingerprint(self) -> str:
        blob = {"choices": self.arch_space.choice_sizes, "hp": self._hp.space.to_serialized_dict(),
                "fixed": self._fixed, "objective": self._objective}
        return hashlib.sha1(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return (f"NaProblem(reference={self.reference!r}, searched={self.searched_hyperparameters}, "
                f"fixed={self._fixed}, objective={self._objective!r})")

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "seed": self.seed, "reference": self._reference,
            "load_data": list(self._load_data) if self._load_data else None,
            "search_space": list(self._space_fn) if self._space_fn else None,
            "shapes": list(self._shapes) if self._shapes else None,
            "hp_space": self._hp.space.to_serialized_dict(), "fixed": self._fixed,
            "loss": self._loss, "metrics": self._metrics, "objective": self._objective,
            "starting_points": self._starting_points,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NaProblem:
        if data.get("kind") != cls.kind:
            raise HpcnasError(f"not a NaProblem description (kind={data.get('kind')!r})")
        problem = cls(seed=data.get("seed"), reference=data.get("reference"))
        problem._module = None
        problem._load_data = tuple(data["load_data"]) if data.get("load_data") else None  # type: ignore[assignment]
        problem._space_fn = tuple(data["search_space"]) if data.get("search_space") else None  # type: ignore[assignment]
        problem._shapes = tuple(data["shapes"]) if data.get("shapes") else None  # type: ignore[assignment]
        problem._hp = HpProblem.from_dict({"space": data["hp_space"]})
        problem._fixed = dict(data.get("fixed", {}))
        problem._loss, problem._metrics, problem._objective = data["loss"], list(data["metrics"]), data["objective"]
        problem._starting_points = list(data.get("starting_points", []))
        return problem

    @classmethod
    def from_json(cls, text: str) -> NaProblem:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise HpcnasError(f"problem JSON is malformed: {err}") from err


def arch_hyperparameters(choice_sizes: Sequence[int]) -> list[Any]:
    """``arch_<i>`` as ConfigSpace categoricals over ``0..n-1`` (a constant when ``n == 1``)."""
    return [CS.Categorical(f"arch_{i}", list(range(n))) if n > 1 else CS.Constant(f"arch_{i}", 0)
            for i, n in enumerate(choice_sizes)]


def parse_objective(spec: str) -> tuple[float, str, str]:
    """``"-val_loss__max"`` -> ``(-1.0, "val_loss", "max")``; the default reduction is ``last``."""
    match = _OBJECTIVE_RE.match(spec) if isinstance(spec, str) else None
    if not match:
        raise HpcnasError(f"objective {spec!r} is malformed: use [-]<metric>[__last|__max], e.g. 'val_r2__last'")
    sign, metric, how = match.groups()
    return (-1.0 if sign else 1.0), metric, how or "last"


def resolve_problem(value: Any) -> NaProblem:
    """The problem a configuration's ``problem`` entry names (dotted path or JSON description)."""
    if isinstance(value, NaProblem):
        return value
    if isinstance(value, dict):
        return NaProblem.from_dict(value)
    if isinstance(value, str):
        problem = load_attribute(value, "problem")
        if not isinstance(problem, NaProblem):
            raise HpcnasError(f"problem '{value}' is a {type(problem).__name__}, not a NaProblem")
        return problem
    raise HpcnasError("the configuration has no 'problem' entry: build it with NaProblem.make_config")


def _function_path(func: str | Callable[..., Any], what: str) -> str:
    if isinstance(func, str):
        return func
    module, qual = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if not module or module == "__main__" or "<" in qual or module.startswith("_hpcnas_user_"):
        raise HpcnasError(f"the {what} {func!r} must be importable by other processes: define it at module level in a package and pass it or its dotted path")
    return f"{module}.{qual}"


def _json_kwargs(kwargs: dict[str, Any], what: str) -> dict[str, Any]:
    kwargs = {k: _plain(v) for k, v in kwargs.items()}
    try:
        json.dumps(kwargs)
    except TypeError as err:
        raise HpcnasError(f"{what} arguments must be JSON values (numbers, strings, lists, dicts): {err}") from None
    return kwargs


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
