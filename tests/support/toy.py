"""A tiny problem and a tiny random search for master/CLI tests (independent of hpcnas.search.hps)."""
from __future__ import annotations

from typing import Any

from hpcnas.problem import HpProblem
from hpcnas.search.base import Search, register_search

Problem = HpProblem()
Problem.add_hyperparameter((-10.0, 10.0), "x")
Problem.add_hyperparameter((1, 8), "units")
Problem.add_hyperparameter(["adam", "sgd", "rms"], "optimizer")
Problem.add_hyperparameter([0.1, 0.5, 1.0], "scale", ordinal=True)

OtherProblem = HpProblem()
OtherProblem.add_hyperparameter((0.0, 1.0), "z")

EmptyProblem = HpProblem()


def run(config: dict[str, Any]) -> float:
    return -float(config["x"]) ** 2 + config["units"] * float(config["scale"])


@register_search("hps", "toyrandom")
class ToyRandomSearch(Search):
    """Uniform random sampling (test helper); ``--batch-note`` exercises search options."""

    def __init__(self, problem: Any, random_state: int | None = None, note: str | None = None, **kwargs: Any) -> None:
        super().__init__(problem, random_state=random_state, **kwargs)
        self.note = note

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument("--note", help="free text kept by the search (tests option plumbing)")

    def _ask(self, n: int) -> list[dict[str, Any]]:
        return self.problem.sample(n, self.rng)


def slow_run(config: dict[str, Any]) -> float:
    """:func:`run` after 0.1 s (gives kill/resume tests time to interrupt a search)."""
    import time

    time.sleep(0.1)
    return run(config)
