"""Analytics: node utilization, throughput, search curves, top-k, parameters, comparisons, reports, live page.

Sources are a search's results.csv (any evaluator) or a Balsam 0.x database
(:mod:`hpcnas.analytics.balsam_db`); both become an :class:`Experiment`. The pure
computations live in :mod:`hpcnas.analytics.timeline`; each command of
``hpcnas-analytics`` is one module (utilization, throughput, search, topk, params, compare,
report, serve; the live page's state is :mod:`hpcnas.analytics.live`).
"""
from __future__ import annotations

from hpcnas.analytics.experiment import Experiment, load_experiment, read_results_csv
from hpcnas.analytics.timeline import Utilization, best_so_far, compute_utilization, step_curve

__all__ = [
    "Experiment",
    "Utilization",
    "best_so_far",
    "compute_utilization",
    "load_experiment",
    "read_results_csv",
    "step_curve",
]
