"""Seconds to build a problem of N hyper-parameters: ``HpProblem.add_hyperparameter`` one by one
versus ConfigSpace's bulk ``add`` of the same hyper-parameters, in the same run (issue 12).

Every search worker that imports the problem's module pays the build again, so it must stay
near-linear in N. Timed apart: the first read of ``problem.space``, which is when
:class:`~hpcnas.problem.HpProblem` hands its pending hyper-parameters to ConfigSpace (the
"total" is what a worker pays); "same space" checks both builds give equal spaces.

Usage::

    python benchmarks/problem_build.py                      # N = 100, 500, 1000, 2000
    python benchmarks/problem_build.py --sizes 100 500      # fewer (the old quadratic code: ~10 s at 500)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ConfigSpace as CS  # noqa: E402

from hpcnas.problem import HpProblem  # noqa: E402
from hpcnas.problem.hp_problem import _make_hyperparameter  # noqa: E402


def specs(n: int) -> list[tuple]:
    """``n`` hyper-parameters cycling through float, int, log float, categorical and ordinal."""
    kinds = [
        lambda i: ((0.0, 1.0), f"f{i}", None, False),
        lambda i: ((1, 64), f"i{i}", None, False),
        lambda i: ((1e-5, 1e-1, "log-uniform"), f"l{i}", None, False),
        lambda i: (["a", "b", "c"], f"c{i}", None, False),
        lambda i: ([1, 2, 4], f"o{i}", None, True),
    ]
    return [kinds[i % len(kinds)](i) for i in range(n)]


def time_hpproblem(n: int) -> tuple[float, float, HpProblem]:
    problem = HpProblem(seed=0)
    start = time.perf_counter()
    for value, name, default, ordinal in specs(n):
        problem.add_hyperparameter(value, name, default_value=default, ordinal=ordinal)
    added = time.perf_counter() - start
    start = time.perf_counter()
    assert len(problem.space) == n
    return added, time.perf_counter() - start, problem


def time_bulk(n: int) -> tuple[float, CS.ConfigurationSpace]:
    start = time.perf_counter()
    space = CS.ConfigurationSpace(seed=0)
    space.add([_make_hyperparameter(value, name, default, ordinal) for value, name, default, ordinal in specs(n)])
    return time.perf_counter() - start, space


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 1000, 2000], metavar="N")
    args = parser.parse_args()
    print(f"{'N':>6s} {'add_hyperparameter x N':>23s} {'first .space':>13s} {'total':>9s} "
          f"{'ConfigSpace bulk add':>21s} {'ratio':>6s}  same space")
    for n in args.sizes:
        added, read, problem = time_hpproblem(n)
        bulk, space = time_bulk(n)
        same = problem.space == space
        print(f"{n:6d} {added:21.3f} s {read:11.3f} s {added + read:7.3f} s {bulk:19.3f} s "
              f"{(added + read) / bulk:6.1f}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
