"""Tables and targets from the suite's runs (a list of :class:`~benchmarks.suite.runner.RunResult` dicts).

For each budget (evaluations) and number of workers:

* the median simple regret over seeds of every method on every problem,
* each method's *mean rank* over the problems (rank 1 = lowest median regret, ties share the
  mean rank), over the methods that ran on every problem of that setting,
* for the default AMBS: the problems where it is worse than random, and where it is within
  10 % of the best peer's regret (``regret <= 1.1 * best + 1e-9``),
* CPU milliseconds per evaluation of every method (ask + tell, mean over runs),

Runs of ``ambs`` with other settings (``--ambs-option``) are columns of their own, named with
their settings (``ambs[liar_strategy=kb]``), and count as hpcnas methods, not peers. And the
cost of asynchrony: for each problem, the evaluations that 8 workers need to reach
the median regret that 1 worker has after ``B`` evaluations, over ``B``.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from scipy.stats import rankdata

from benchmarks.suite.methods import HPCNAS_METHODS

TOL_REL, TOL_ABS = 0.10, 1e-9


def label(run: dict[str, Any]) -> str:
    """A run's column: its method, with the ambs settings it ran with (``--ambs-option``) in brackets."""
    options = run.get("options")
    if not options:
        return run["method"]
    return run["method"] + "[" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) + "]"


def _ours(name: str) -> bool:
    return name.split("[")[0] in HPCNAS_METHODS


def _curves(runs: list[dict[str, Any]], budget: int, workers: int) -> dict[tuple[str, str], np.ndarray]:
    """(problem, method) -> array (seeds, budget) of regret curves, runs with >= budget evals."""
    found: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
    for run in runs:
        if run["workers"] == workers and run["evals"] >= budget and not run["failed"]:
            found[(run["problem"], label(run))].append(run["regret"][:budget])
    return {k: np.array(v) for k, v in found.items()}


def _full_curves(runs: list[dict[str, Any]], workers: int) -> dict[tuple[str, str], np.ndarray]:
    """(problem, method) -> array (seeds, n) of whole regret curves, cut to the shortest run."""
    found: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
    for run in runs:
        if run["workers"] == workers and run["evals"] and not run["failed"]:
            found[(run["problem"], label(run))].append(run["regret"])
    return {k: np.array([r[: min(map(len, v))] for r in v]) for k, v in found.items()}


def regret_table(runs: list[dict[str, Any]], budget: int, workers: int) -> tuple[list[str], list[str], np.ndarray]:
    """(problems, methods, median regret matrix); NaN where a method did not run."""
    curves = _curves(runs, budget, workers)
    problems = sorted({p for p, _ in curves})
    methods = sorted({m for _, m in curves}, key=_method_order)
    table = np.full((len(problems), len(methods)), np.nan)
    for (p, m), c in curves.items():
        table[problems.index(p), methods.index(m)] = float(np.median(c[:, -1]))
    return problems, methods, table


def mean_ranks(methods: list[str], table: np.ndarray) -> dict[str, float]:
    complete = [j for j in range(len(methods)) if not np.isnan(table[:, j]).any()]
    if not complete or table.shape[0] == 0:
        return {}
    ranks = np.array([rankdata(row[complete]) for row in table])
    return {methods[j]: float(ranks[:, i].mean()) for i, j in enumerate(complete)}


def target_checks(problems: list[str], methods: list[str], table: np.ndarray, subject: str = "ambs") -> dict[str, Any]:
    if subject not in methods:
        return {}
    s = table[:, methods.index(subject)]
    peers = [j for j, m in enumerate(methods) if not _ours(m)]
    out: dict[str, Any] = {}
    if "random" in methods:
        rnd = table[:, methods.index("random")]
        out["worse_than_random"] = [p for p, a, r in zip(problems, s, rnd) if a > r * (1 + 1e-9) + TOL_ABS]
    if peers:
        best_peer = np.nanmin(table[:, peers], axis=1)
        within = s <= best_peer * (1 + TOL_REL) + TOL_ABS
        out["within_10pct_of_best_peer"] = f"{int(within.sum())}/{len(problems)}"
        out["not_within"] = [p for p, ok in zip(problems, within) if not ok]
    return out


def async_cost(runs: list[dict[str, Any]], budget: int, method: str, workers: int = 8) -> dict[str, float]:
    """problem -> evaluations with ``workers`` to match 1 worker's median regret at ``budget``,
    over ``budget`` (inf when never matched within the runs' length). A setting of ``ambs``
    that changes only what pending points do ran with ``workers`` only: its 1-worker regret is
    that of ``ambs`` (with one worker nothing is pending when it asks)."""
    one = _curves(runs, budget, 1)
    many = _full_curves(runs, workers)
    out = {}
    for (p, m), c in many.items():
        c1 = one.get((p, method), one.get((p, method.split("[")[0])))
        if m != method or c1 is None:
            continue
        target = float(np.median(c1[:, -1]))
        median_curve = np.median(c, axis=0)
        hit = np.flatnonzero(median_curve <= target + TOL_ABS)
        out[p] = float(hit[0] + 1) / budget if hit.size else float("inf")
    return out


def cpu_per_eval(runs: list[dict[str, Any]]) -> dict[str, float]:
    acc: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        if run["evals"]:
            acc[label(run)].append(1000.0 * run["cpu_s"] / run["evals"])
    return {m: float(np.mean(v)) for m, v in sorted(acc.items(), key=lambda kv: _method_order(kv[0]))}


def _method_order(name: str) -> tuple[int, str]:
    return (0 if _ours(name) else 1, name)


def _fmt(value: float) -> str:
    if np.isnan(value):
        return "-"
    return f"{value:.3g}" if value >= 1e-3 or value == 0 else f"{value:.1e}"


def render(runs: list[dict[str, Any]], budgets: list[int], workers_list: list[int], markdown: bool = False) -> str:
    lines: list[str] = []
    for workers in workers_list:
        for budget in budgets:
            problems, methods, table = regret_table(runs, budget, workers)
            if not problems:
                continue
            lines.append(f"\n### {budget} evaluations, {workers} worker{'s' if workers > 1 else ''} "
                         f"(median simple regret over seeds, lower is better)\n")
            head = ["problem"] + methods
            rows = [[p] + [_fmt(v) for v in table[i]] for i, p in enumerate(problems)]
            ranks = mean_ranks(methods, table)
            rows.append(["mean rank"] + [f"{ranks[m]:.2f}" if m in ranks else "-" for m in methods])
            lines.extend(_table_lines(head, rows, markdown))
            checks = target_checks(problems, methods, table)
            if checks:
                lines.append("")
                lines.extend(f"- ambs {k.replace('_', ' ')}: {v if v else 'none'}" for k, v in checks.items())
    for budget in budgets:
        variants = sorted({label(r) for r in runs if r["method"] == "ambs" and r["workers"] == 8})
        for method in ["ambs"] + [v for v in variants if v != "ambs"]:
            cost = async_cost(runs, budget, method)
            if cost:
                ratios = np.array(list(cost.values()))
                lines.append(f"\n8 workers vs 1, {method} at {budget}: evaluations needed / {budget}: median "
                             f"{np.median(ratios):.2f}, <= 1.2 on {int((ratios <= 1.2).sum())}/{len(ratios)} problems; "
                             + ", ".join(f"{p} {r:.2f}" for p, r in sorted(cost.items())))
    lines.append("\nCPU ms per evaluation (ask + tell, mean over runs): "
                 + ", ".join(f"{m} {v:.1f}" for m, v in cpu_per_eval(runs).items()))
    return "\n".join(lines)


def _table_lines(head: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    if markdown:
        out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
               "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        return out + ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in [head] + rows]
