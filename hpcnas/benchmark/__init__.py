"""Benchmark problems with known optima, and an in-process asynchronous simulator.

Each problem module defines ``Problem`` (an :class:`~hpcnas.problem.HpProblem`), ``run(config)``
(the objective to *maximise*, i.e. the negative of the usual minimisation form),
``OPTIMUM`` (the best value ``run`` can return) and ``OPTIMAL_CONFIG`` (one configuration that
reaches it), so ``hpcnas hps ambs --problem hpcnas.benchmark.polynome2.Problem
--run hpcnas.benchmark.polynome2.run`` works out of the box.

* :mod:`~hpcnas.benchmark.polynome2` -- ``-sum(x_i^2)``, 10 dims in [-10, 10], optimum 0
* :mod:`~hpcnas.benchmark.branin` -- negative Branin, 2 dims, optimum -0.397887
* :mod:`~hpcnas.benchmark.hartmann6` -- negative Hartmann-6, 6 dims in [0, 1], optimum 3.32237
* :mod:`~hpcnas.benchmark.ackley` -- negative Ackley, 10 dims in [-32.768, 32.768], optimum 0
"""
from __future__ import annotations

BENCHMARKS = ("polynome2", "branin", "hartmann6", "ackley")
