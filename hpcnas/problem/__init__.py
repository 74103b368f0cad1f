"""Search problems: what is searched (the space) and how points are judged (the run function)."""
from __future__ import annotations

from hpcnas.problem.hp_problem import HpProblem, load_problem
from hpcnas.problem.na_problem import NaProblem

__all__ = ["HpProblem", "NaProblem", "load_problem"]
