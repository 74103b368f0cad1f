"""``hpcnas-analytics utilization``: busy nodes vs nodes available, idle gaps and causes.

Writes ``utilization.png`` (node-weighted busy curve against the allocation, and the
jobs-running curve as Balsam's old report drew it), ``utilization.json`` (figures, idle
node-seconds by cause, idle gaps) and ``utilization.csv`` (the curves).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from hpcnas.analytics import output
from hpcnas.analytics.experiment import Experiment
from hpcnas.analytics.timeline import (
    LAUNCH_LATENCY,
    Utilization,
    bin_step,
    compute_utilization,
)
from hpcnas.core.errors import HpcnasError

#: idle gaps listed in the JSON (all are in utilization_gaps.csv)
MAX_GAPS_IN_JSON = 50


def utilization_of(exp: Experiment) -> Utilization:
    """Compute the utilization of ``exp`` (see :func:`.timeline.compute_utilization`)."""
    runs = exp.runs
    if runs.empty:
        raise HpcnasError(f"{exp.source} has no job that ran (no start and end times): "
                          "wait until evaluations have run, or check the workflow name")
    waits = exp.waits
    try:
        return compute_utilization(
            runs["start"].to_numpy(), runs["end"].to_numpy(), runs["weight"].to_numpy(),
            nodes=exp.nodes,
            wait_start=waits["start"].to_numpy(), wait_end=waits["end"].to_numpy(),
        )
    except ValueError as err:
        raise HpcnasError(f"cannot compute the utilization of {exp.source}: {err}") from None


#: seconds a run may start before or end after its launcher's first / last log line (the log
#: stamps are whole seconds)
STAMP_SLACK = 1.0


def lifetime_figures(starts: np.ndarray, ends: np.ndarray, weights: np.ndarray, nodes: float,
                     lifetimes: list[tuple[float, float]]) -> dict | None:
    """Utilization over the launchers' whole lifetime, not only from the first job start to the
    last job end: a launcher's start-up (its first line to its first run), its idle tail (its
    last run to its last line) and a launcher that ran nothing are idle causes of their own, and
    the time between two launches is reported apart (no allocation held then). None without
    ``lifetimes`` (``(first line, last line)`` per launcher, :mod:`.launcher_logs`)."""
    if not lifetimes or not nodes:
        return None
    spans: list[list[float]] = []
    for start, end in sorted(lifetimes):  # launchers that overlap count once
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    alive = sum(end - start for start, end in spans)
    busy = float(np.sum((ends - starts) * weights))
    startup = tail = nothing = 0.0
    for start, end in spans:
        inside = (starts >= start - STAMP_SLACK) & (starts <= end + STAMP_SLACK)
        if not inside.any():
            nothing += nodes * (end - start)
            continue
        startup += nodes * max(0.0, float(starts[inside].min()) - start)
        tail += nodes * max(0.0, end - float(ends[inside].max()))
    capacity = nodes * alive
    return {
        "launchers": len(lifetimes),
        "seconds": alive,
        "first_start_to_last_end_seconds": spans[-1][1] - spans[0][0],
        "between_launches_seconds": (spans[-1][1] - spans[0][0]) - alive,
        "utilization_percent": 100.0 * busy / capacity if capacity > 0 else 0.0,
        "idle_node_seconds": {
            "launcher start-up": startup, "idle tail": tail, "launcher with no job": nothing,
            "while jobs ran": max(0.0, capacity - busy - startup - tail - nothing),
        },
    }


#: above this many breakpoints, curves are drawn as per-bin averages with a min-max band
MAX_PLOT_POINTS = 4000
PLOT_BINS = 1000


def plot_curve(util: Utilization, values: np.ndarray, div: float):
    """(x, y, band) to draw: the exact steps, or bin averages and a (min, max) band."""
    if util.times.size <= MAX_PLOT_POINTS:
        return (util.times - util.t0) / div, values, None
    edges = np.linspace(util.t0, util.t1, PLOT_BINS + 1)
    mean, vmin, vmax = bin_step(util.times, values, edges)
    x = (edges - util.t0) / div
    pad = lambda a: np.append(a, a[-1])  # noqa: E731 - the last step holds to the end
    return x, pad(mean), (pad(vmin), pad(vmax))


def plot_utilization(util: Utilization, path: str, title: str) -> str:
    span = util.t1 - util.t0
    div, unit = output.time_unit(span)
    fig, axes = output.figure(2, 1, height=3.0)
    ax = axes[0][0]
    x, busy, band = plot_curve(util, util.busy_nodes, div)
    if band is not None:
        ax.fill_between(x, band[0], band[1], step="post", color="tab:blue", alpha=0.15,
                        linewidth=0, label="min-max per bin")
    ax.fill_between(x, busy, step="post", alpha=0.35, color="tab:blue")
    ax.step(x, busy, where="post", color="tab:blue",
            label="busy nodes" + (" (bin average)" if band is not None else ""))
    ax.axhline(util.nodes, color="black", linestyle="--", linewidth=1,
               label=f"available ({util.nodes:g})")
    ax.set_ylabel("nodes")
    ax.set_ylim(0, max(util.nodes, float(util.busy_nodes.max())) * 1.3)
    ax.set_title(f"{title}: node utilization {util.percent:.1f}%")
    ax.legend(loc="upper right", fontsize="small", ncols=3)
    ax2 = axes[1][0]
    xr, running, _ = plot_curve(util, util.running_jobs, div)
    xw, waiting, _ = plot_curve(util, util.waiting_jobs, div)
    ax2.step(xr, running, where="post", color="tab:green", label="jobs running")
    ax2.step(xw, waiting, where="post", color="tab:orange", alpha=0.8, label="jobs waiting")
    shaded = False
    for gap in sorted(util.gaps, key=lambda g: -g["seconds"])[:200]:
        if gap["cause"] == LAUNCH_LATENCY:
            continue
        ax2.axvspan((gap["start"] - util.t0) / div, (gap["end"] - util.t0) / div,
                    color="tab:red", alpha=0.08, linewidth=0,
                    label=None if shaded else "idle, no runnable job")
        shaded = True
    ax2.set_ylim(0, max(float(util.running_jobs.max()), float(util.waiting_jobs.max()), 1) * 1.3)
    ax2.set_ylabel("jobs")
    ax2.set_xlabel(f"elapsed time ({unit})")
    ax2.legend(loc="upper right", fontsize="small", ncols=3)
    return output.save_figure(fig, path)


def write_utilization(exp: Experiment, out: str, util: Utilization | None = None) -> dict:
    """Write the PNG, JSON and CSVs into ``out``; return the JSON summary."""
    util = util or utilization_of(exp)
    output.output_dir(out)
    summary = util.summary()
    summary.update(label=exp.label, source=exp.source, nodes_source=exp.nodes_source
                   if exp.nodes is not None else "inferred from the peak of busy nodes")
    if util.overcommit_seconds > 0:
        summary["warning"] = (
            f"busy nodes (peak {util.peak_busy_nodes:g}) exceed the {util.nodes:g} available "
            f"during {util.overcommit_seconds:.3g} s; if that is more than a moment, pass the "
            "real allocation with --nodes")
    summary["gaps"] = sorted(util.gaps, key=lambda g: -g["idle_node_seconds"])[:MAX_GAPS_IN_JSON]
    runs = exp.runs
    lifetime = lifetime_figures(runs["start"].to_numpy(dtype=float), runs["end"].to_numpy(dtype=float),
                                runs["weight"].to_numpy(dtype=float), util.nodes,
                                list(exp.info.get("launcher_lifetimes") or []))
    if lifetime is not None:
        summary["lifetime"] = lifetime
    output.write_json(os.path.join(out, "utilization.json"), summary)
    output.write_csv(os.path.join(out, "utilization.csv"), util.curve_table(),
                     float_format="%.6f")
    output.write_csv(os.path.join(out, "utilization_gaps.csv"),
                     {k: [g[k] for g in util.gaps] for k in
                      ("start", "end", "seconds", "idle_node_seconds", "mean_idle_nodes", "cause")})
    plot_utilization(util, os.path.join(out, "utilization.png"), exp.label)
    return summary


def describe(summary: dict) -> str:
    idle = summary["idle_node_seconds"]
    return (
        f"{summary['label']}: {summary['utilization_percent']:.2f}% of {summary['nodes']:g} "
        f"nodes busy over {summary['wall_seconds']:.1f} s ({summary['num_runs']} runs, "
        f"nodes: {summary['nodes_source']}); idle node-seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in idle.items())
        + (f"\n{_describe_lifetime(summary['lifetime'])}" if "lifetime" in summary else "")
        + (f"\nwarning: {summary['warning']}" if "warning" in summary else "")
    )


def _describe_lifetime(life: dict) -> str:
    between = (f", {life['between_launches_seconds']:.1f} s between launches not counted"
               if life["between_launches_seconds"] > 0 else "")
    return (f"over the launchers' lifetime ({life['launchers']} launcher(s), {life['seconds']:.1f} s{between}): "
            f"{life['utilization_percent']:.2f}% busy; idle node-seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in life["idle_node_seconds"].items()))


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hpcnas.analytics.cli import source_parser

    p = sub.add_parser("utilization", parents=[source_parser()],
                       help="nodes busy vs available over time, idle gaps and their causes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpcnas.analytics.cli import experiment_from_args

    exp = experiment_from_args(args)
    summary = write_utilization(exp, args.output_dir)
    print(describe(summary))
    print(f"wrote {os.path.join(args.output_dir, 'utilization.png')} (+ .json, .csv)")
    return 0

