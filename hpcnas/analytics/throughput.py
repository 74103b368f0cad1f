"""``hpcnas-analytics throughput``: finished evaluations, errors and timeouts over time.

Writes ``throughput.png`` (cumulative counts per kind, and finished per time bin),
``throughput.json`` (totals, mean rate) and ``throughput.csv`` (cumulative curves).
A finished run is ``done`` (Balsam RUN_DONE / results status DONE), ``error`` (RUN_ERROR,
FAILED, STOPPED) or ``timeout`` (RUN_TIMEOUT, TIMEOUT).
"""
from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
import pandas as pd

from hpcnas.analytics import output
from hpcnas.analytics.experiment import END_KINDS, Experiment
from hpcnas.core.errors import HpcnasError

_COLORS = {"done": "tab:green", "error": "tab:red", "timeout": "tab:orange"}


def compute_throughput(exp: Experiment) -> dict[str, Any]:
    """Cumulative counts per kind; ``t0`` is the first start (or first end without runs)."""
    ends = exp.ends
    if ends.empty:
        raise HpcnasError(f"{exp.source} has no finished evaluation yet: wait until some have "
                          "run, or check the workflow name")
    t0 = float(exp.runs["start"].min()) if not exp.runs.empty else float(ends["time"].min())
    t0 = min(t0, float(ends["time"].min()))
    t1 = float(ends["time"].max())
    curves = {}
    totals = {}
    for kind in END_KINDS:
        t = np.sort(ends.loc[ends["kind"] == kind, "time"].to_numpy(dtype=float))
        curves[kind] = t
        totals[kind] = int(t.size)
    span = t1 - t0
    rate = totals["done"] / span * 60.0 if span > 0 else float("nan")
    return {"t0": t0, "t1": t1, "totals": totals, "curves": curves,
            "done_per_minute": rate, "wall_seconds": span}


def plot_throughput(tp: dict[str, Any], path: str, title: str) -> str:
    t0, span = tp["t0"], tp["wall_seconds"]
    div, unit = output.time_unit(span)
    fig, axes = output.figure(2, 1, height=3.0)
    ax = axes[0][0]
    for kind, t in tp["curves"].items():
        if t.size:
            x = np.concatenate([[0.0], (t - t0) / div])
            y = np.arange(0, t.size + 1)
            ax.step(x, y, where="post", color=_COLORS[kind], label=f"{kind} ({t.size})")
    ax.set_ylabel("finished (cumulative)")
    ax.set_title(f"{title}: throughput {tp['done_per_minute']:.2f} done/min")
    ax.legend(loc="upper left", fontsize="small")
    ax2 = axes[1][0]
    nbins = 40
    edges = np.linspace(0.0, max(span, 1e-9) / div, nbins + 1)
    bottom = np.zeros(nbins)
    for kind, t in tp["curves"].items():
        hist, _ = np.histogram((t - t0) / div, bins=edges)
        ax2.bar(edges[:-1], hist, width=np.diff(edges), align="edge", bottom=bottom,
                color=_COLORS[kind], alpha=0.8, label=kind)
        bottom += hist
    ax2.set_ylabel(f"finished per {edges[1] - edges[0]:.3g} {unit}")
    ax2.set_xlabel(f"elapsed time ({unit})")
    return output.save_figure(fig, path)


def write_throughput(exp: Experiment, out: str) -> dict[str, Any]:
    tp = compute_throughput(exp)
    output.output_dir(out)
    summary = {"label": exp.label, "source": exp.source, "t0": tp["t0"], "t1": tp["t1"],
               "wall_seconds": tp["wall_seconds"], "totals": tp["totals"],
               "done_per_minute": tp["done_per_minute"]}
    output.write_json(os.path.join(out, "throughput.json"), summary)
    frames = [pd.DataFrame({"time": t, "elapsed_s": t - tp["t0"], "kind": kind,
                            "cumulative": np.arange(1, t.size + 1)})
              for kind, t in tp["curves"].items()]
    output.write_csv(os.path.join(out, "throughput.csv"), pd.concat(frames, ignore_index=True))
    plot_throughput(tp, os.path.join(out, "throughput.png"), exp.label)
    return summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hpcnas.analytics.cli import source_parser

    p = sub.add_parser("throughput", parents=[source_parser()],
                       help="finished evaluations, errors and timeouts over time")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpcnas.analytics.cli import experiment_from_args

    exp = experiment_from_args(args)
    s = write_throughput(exp, args.output_dir)
    totals = ", ".join(f"{k} {v}" for k, v in s["totals"].items())
    print(f"{s['label']}: {totals} in {s['wall_seconds']:.1f} s "
          f"({s['done_per_minute']:.2f} done/min)")
    print(f"wrote {os.path.join(args.output_dir, 'throughput.png')} (+ .json, .csv)")
    return 0
