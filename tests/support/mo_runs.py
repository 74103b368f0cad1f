"""Run functions with several objectives (multi-objective tests)."""
from __future__ import annotations

from typing import Any


def two(config: dict[str, Any]) -> tuple[float, float]:
    """Two conflicting objectives of ``x`` (maximised): the Pareto set is every ``x`` in [0, 2]."""
    x = float(config["x"])
    return -x ** 2, -(x - 2) ** 2


def two_as_dict(config: dict[str, Any]) -> dict[str, Any]:
    f0, f1 = two(config)
    return {"objective": [f0, f1], "metadata": {"note": "dict"}, "duration": 1.0}


def bad_shapes(config: dict[str, Any]) -> Any:
    """A bad value for each ``optimizer`` of the toy problem, two objectives otherwise."""
    x = float(config["x"])
    bad = {"adam": (x, x, x), "sgd": (x, float("nan")), "rms": ("fast", x)}
    return bad[config["optimizer"]] if config["units"] <= 4 else two(config)
