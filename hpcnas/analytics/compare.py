"""``hpcnas-analytics compare EXP1 EXP2 ...``: several experiments on shared axes.

Each EXP is ``[LABEL=]SOURCE`` (output directory, results.csv or ``balsam:WORKFLOW``),
e.g. ``AgE=runs/age AgEBO=runs/agebo``. Writes ``compare_search.png`` (best objective so
far vs wall time and vs evaluations, one line per experiment), ``compare_utilization.png``
(busy fraction of each experiment's allocation vs elapsed time) and ``compare.json`` /
``compare.csv`` (one summary row per experiment).
"""
from __future__ import annotations

import argparse
import os
from typing import Any

import pandas as pd

from hpcnas.analytics import output
from hpcnas.analytics.experiment import Experiment
from hpcnas.analytics.search import plot_search, search_curve, summarize_search
from hpcnas.analytics.timeline import Utilization
from hpcnas.analytics.utilization import plot_curve, utilization_of
from hpcnas.core.errors import UsageError


def compare(experiments: list[Experiment], out: str, maximize: bool = True
            ) -> list[dict[str, Any]]:
    labels = [e.label for e in experiments]
    if len(set(labels)) != len(labels):
        raise UsageError(f"experiment labels repeat ({', '.join(labels)}): name them "
                         "LABEL=PATH")
    output.output_dir(out)
    rows: list[dict[str, Any]] = []
    curves: dict[str, pd.DataFrame] = {}
    utils: dict[str, Utilization] = {}
    for exp in experiments:
        row: dict[str, Any] = {"label": exp.label, "source": exp.source}
        if exp.results is not None and len(exp.results):
            curve = search_curve(exp.results, maximize=maximize)
            curves[exp.label] = curve
            s = summarize_search(exp.results, curve, maximize=maximize)
            row.update({k: s.get(k) for k in ("num_evaluations", "num_failed", "best_objective",
                                              "best_at_evaluation", "best_at_elapsed_s")})
        if not exp.runs.empty:
            util = utilization_of(exp)
            utils[exp.label] = util
            row.update(nodes=util.nodes, utilization_percent=util.percent,
                       wall_seconds=util.t1 - util.t0)
        rows.append(row)
    if curves:
        plot_search(curves, os.path.join(out, "compare_search.png"),
                    "best objective so far", points=False)
    if utils:
        _plot_utilization(utils, os.path.join(out, "compare_utilization.png"))
    output.write_json(os.path.join(out, "compare.json"), {"experiments": rows})
    output.write_csv(os.path.join(out, "compare.csv"), pd.DataFrame(rows))
    return rows


def _plot_utilization(utils: dict[str, Utilization], path: str) -> str:
    span = max(u.t1 - u.t0 for u in utils.values())
    div, unit = output.time_unit(span)
    fig, axes = output.figure(1, 1, height=3.4)
    ax = axes[0][0]
    for i, (label, u) in enumerate(utils.items()):
        x, busy, _ = plot_curve(u, u.busy_nodes, div)  # bin averages for large curves
        ax.step(x, 100.0 * busy / u.nodes, where="post",
                color=f"C{i % 10}", label=f"{label} ({u.percent:.1f}% of {u.nodes:g})")
    ax.set_xlabel(f"elapsed time ({unit})")
    ax.set_ylabel("busy nodes (% of allocation)")
    ax.set_ylim(0, 110)
    ax.legend(fontsize="small", loc="lower right")
    ax.set_title("node utilization")
    return output.save_figure(fig, path)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hpcnas.analytics.cli import options_parser

    p = sub.add_parser("compare", parents=[options_parser()],
                       help="search curves and utilization of several experiments")
    p.add_argument("experiments", nargs="+", metavar="EXP",
                   help="[LABEL=]SOURCE: output directory, results.csv or balsam:WORKFLOW")
    p.add_argument("--minimize", action="store_true", help="lower objective is better")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpcnas.analytics.experiment import load_experiment

    if args.workflow is not None:
        raise UsageError("compare takes workflows as balsam:WORKFLOW arguments, not --workflow")
    exps = [load_experiment(spec, db=args.db, nodes=args.nodes, job_mode=args.job_mode)
            for spec in args.experiments]
    rows = compare(exps, args.output_dir, maximize=not args.minimize)
    cols = ["label", "num_evaluations", "best_objective", "utilization_percent", "nodes"]
    table = pd.DataFrame(rows)
    print(table[[c for c in cols if c in table.columns]].to_string(index=False))
    print(f"wrote {os.path.join(args.output_dir, 'compare.json')} (+ .csv, .png)")
    return 0
