"""``hpcnas-analytics search``: best objective so far vs wall time and vs evaluation count.

Evaluations are ordered by completion (``end_time``; rows without one keep file order at
the end). Wall time is measured from the search start, the earliest ``submit_time``.
Objectives are maximised (DeepHyper's convention) unless ``--minimize``. Failed
evaluations count as evaluations but never as best.

Writes ``search.png`` (both curves, every objective as a point), ``search_curve.csv`` and
``search_summary.json`` (best objective and configuration, when and after how many).
"""
from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
import pandas as pd

from hpcnas.analytics import output
from hpcnas.analytics.experiment import Experiment, param_columns
from hpcnas.analytics.timeline import best_so_far
from hpcnas.core.errors import HpcnasError
from hpcnas.evaluator.base import PARAM_PREFIX


def search_curve(results: pd.DataFrame, maximize: bool = True) -> pd.DataFrame:
    """Columns: evaluation (1..n), time (epoch), elapsed_s, objective, best, job_id, status."""
    if results.empty:
        raise HpcnasError("the results hold no evaluation yet: wait until some have finished")
    end = results["end_time"].to_numpy(dtype=float)
    order = np.argsort(np.where(np.isfinite(end), end, np.inf), kind="stable")
    df = results.iloc[order]
    t_start = np.nanmin(np.concatenate([df["submit_time"].to_numpy(dtype=float),
                                        df["start_time"].to_numpy(dtype=float), end]))
    obj = df["objective"].to_numpy(dtype=float)
    t = df["end_time"].to_numpy(dtype=float)
    return pd.DataFrame({
        "evaluation": np.arange(1, len(df) + 1),
        "time": t,
        "elapsed_s": t - t_start,
        "objective": obj,
        "best": best_so_far(obj, maximize=maximize),
        "job_id": df["job_id"].to_numpy(),
        "status": df["status"].to_numpy(),
    })


def summarize_search(results: pd.DataFrame, curve: pd.DataFrame, maximize: bool = True
                     ) -> dict[str, Any]:
    ok = curve["objective"].notna()
    summary: dict[str, Any] = {
        "maximize": maximize,
        "num_evaluations": int(len(curve)),
        "num_failed": int((~ok).sum()),
        "best_objective": None,
    }
    if ok.any():
        idx = int(curve["objective"].idxmax() if maximize else curve["objective"].idxmin())
        best = curve.loc[idx]
        row = results.loc[results["job_id"].astype(str) == str(best["job_id"])].iloc[0]
        summary.update(
            best_objective=float(best["objective"]),
            best_job_id=str(best["job_id"]),
            best_at_evaluation=int(best["evaluation"]),
            best_at_elapsed_s=float(best["elapsed_s"]),
            best_config={c[len(PARAM_PREFIX):]: _plain(row[c]) for c in param_columns(results)},
        )
    summary["wall_seconds"] = float(np.nanmax(curve["elapsed_s"])) if len(curve) else 0.0
    return summary


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def plot_search(curves: dict[str, pd.DataFrame], path: str, title: str,
                points: bool = True) -> str:
    """Best-so-far vs wall time and vs evaluation count; one line per experiment."""
    span = max(float(np.nanmax(c["elapsed_s"])) if len(c) else 0.0 for c in curves.values())
    div, unit = output.time_unit(span)
    fig, axes = output.figure(1, 2, width=5.5, height=3.6)
    ax_t, ax_n = axes[0][0], axes[0][1]
    colors = [f"C{i}" for i in range(10)]
    for i, (label, c) in enumerate(curves.items()):
        color = colors[i % 10]
        x = c["elapsed_s"].to_numpy() / div
        if points:  # plot() with markers draws 100k points several times faster than scatter
            style = dict(linestyle="none", marker="o", markersize=2.5, alpha=0.35,
                         markeredgewidth=0, color=color)
            ax_t.plot(x, c["objective"], **style)
            ax_n.plot(c["evaluation"], c["objective"], **style)
        ax_t.step(x, c["best"], where="post", color=color, label=label)
        ax_n.step(c["evaluation"], c["best"], where="post", color=color, label=label)
    ax_t.set_xlabel(f"wall time ({unit})")
    ax_n.set_xlabel("evaluations")
    ax_t.set_ylabel("objective (best so far: line)")
    ax_t.legend(fontsize="small", loc="lower right")
    fig.suptitle(title)
    return output.save_figure(fig, path)


def write_search(exp: Experiment, out: str, maximize: bool = True) -> dict[str, Any]:
    results = exp.require_results("search")
    curve = search_curve(results, maximize=maximize)
    summary = summarize_search(results, curve, maximize=maximize)
    summary.update(label=exp.label, source=exp.source)
    output.output_dir(out)
    output.write_csv(os.path.join(out, "search_curve.csv"), curve)
    output.write_json(os.path.join(out, "search_summary.json"), summary)
    plot_search({exp.label: curve}, os.path.join(out, "search.png"),
                f"{exp.label}: best objective so far")
    return summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hpcnas.analytics.cli import source_parser

    p = sub.add_parser("search", parents=[source_parser()],
                       help="best objective so far vs wall time and vs evaluation count")
    p.add_argument("--minimize", action="store_true", help="lower objective is better")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpcnas.analytics.cli import experiment_from_args

    exp = experiment_from_args(args)
    s = write_search(exp, args.output_dir, maximize=not args.minimize)
    if s["best_objective"] is None:
        print(f"{s['label']}: {s['num_evaluations']} evaluations, all failed")
    else:
        print(f"{s['label']}: best objective {s['best_objective']:.6g} at evaluation "
              f"{s['best_at_evaluation']} of {s['num_evaluations']} "
              f"({s['best_at_elapsed_s']:.1f} s), {s['num_failed']} failed")
    print(f"wrote {os.path.join(args.output_dir, 'search.png')} (+ search_curve.csv, "
          "search_summary.json)")
    return 0
