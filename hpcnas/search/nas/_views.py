"""Views of a :class:`~hpcnas.problem.NaProblem` that the HPS searches can work on.

The NAS searches reuse the hyper-parameter searches (:mod:`hpcnas.search.hps`) rather than
re-implementing them: aging evolution over the architecture is the HPS ``AgE`` over a space of
``arch_<i>`` categoricals, AgEBO's hyper-parameter BO is the HPS ``AMBS`` over the searched
training hyper-parameters, and the mixed variants run them over the flat space
(:attr:`NaProblem.space`). A :class:`SpaceView` is the minimal problem those searches need.
"""
from __future__ import annotations

from typing import Any, Sequence

import ConfigSpace as CS

from hpcnas.core.errors import HpcnasError
from hpcnas.problem.na_problem import ARCH_KEY, arch_hyperparameters


class SpaceView:
    """An HpProblem-like object: ``space``, ``starting_points``, ``check()``."""

    kind = "view"

    def __init__(self, space: CS.ConfigurationSpace, starting_points: Sequence[dict[str, Any]] = ()) -> None:
        self.space = space
        self.starting_points = [dict(p) for p in starting_points]

    @property
    def hyperparameter_names(self) -> list[str]:
        return list(self.space.keys())

    def check(self) -> None:
        if len(self.space) == 0:
            raise HpcnasError("internal: empty search space view")


def arch_to_flat(arch_seq: Sequence[int]) -> dict[str, int]:
    return {f"arch_{i}": int(v) for i, v in enumerate(arch_seq)}


def flat_to_arch(flat: dict[str, Any], length: int) -> list[int]:
    return [int(flat[f"arch_{i}"]) for i in range(length)]


def check_na_problem(problem: Any) -> None:
    if not all(hasattr(problem, a) for a in ("arch_space", "make_config", "hp_problem")):
        raise HpcnasError(
            f"NAS searches need a NaProblem, got {type(problem).__name__}: "
            "define Problem = NaProblem() with load_data and search_space (or use 'hpcnas hps')"
        )


def arch_view(problem: Any) -> SpaceView:
    space = CS.ConfigurationSpace()
    for hp in arch_hyperparameters(problem.arch_space.choice_sizes):
        space.add(hp)
    starts = [arch_to_flat(p[ARCH_KEY]) for p in problem.starting_points]
    return SpaceView(space, starts)


def hp_view(problem: Any) -> SpaceView:
    names = problem.searched_hyperparameters
    starts = [{k: p[k] for k in names} for p in problem.starting_points]
    return SpaceView(problem.hp_problem.space, starts)


def flat_view(problem: Any) -> SpaceView:
    return SpaceView(problem.space, [problem.to_flat(p) for p in problem.starting_points])


def default_hyperparameters(problem: Any) -> dict[str, Any]:
    """The searched hyper-parameters at their ConfigSpace defaults (AgE keeps them fixed)."""
    from hpcnas.problem.hp_problem import to_python

    if not problem.searched_hyperparameters:
        return {}
    return to_python(dict(problem.hp_problem.space.get_default_configuration()))
