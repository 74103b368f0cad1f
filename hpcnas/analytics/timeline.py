"""Pure timeline computations: step curves, node utilization and idle gaps.

Everything here works on numpy arrays of epoch seconds and has no I/O, so it is tested
on synthetic timelines and is the same for a Balsam DB and a results.csv.

* A *run* is ``(start, end, weight)``: a job occupying ``weight`` nodes during
  ``[start, end)``. A packed serial job on a node shared by ``node_packing_count`` jobs has
  weight ``1 / node_packing_count``; an MPI job has weight ``num_nodes``.
* A *wait* is ``[start, end)`` during which a job could have run but did not (created or
  runnable, not yet running). Idle capacity while some job waits is *launch latency*; idle
  capacity while nothing waits is *no runnable job*.
* :func:`step_curve` turns intervals into a right-continuous step function
  ``value(t) = values[i]`` for ``times[i] <= t < times[i+1]``; the last value holds after the
  last breakpoint (and is 0 when every interval ended).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: busy values are rounded to this many decimals so 1/3 + 1/3 + 1/3 sums to exactly 1
_DECIMALS = 9
NO_RUNNABLE_JOB = "no runnable job"
#: busy nodes may exceed the allocation by this fraction before it counts as over-commitment:
#: Balsam's serial mode itself fills a node up to an occupancy of 1.001
OVERCOMMIT_TOLERANCE = 0.001
LAUNCH_LATENCY = "launch latency"


def step_curve(
    starts: np.ndarray, ends: np.ndarray, weights: np.ndarray | float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of weighted intervals ``[start, end)`` as a step function ``(times, values)``.

    ``times`` are the sorted distinct breakpoints; ``values[i]`` holds on
    ``[times[i], times[i+1])``. Intervals with ``end <= start`` count for nothing.
    """
    starts = np.asarray(starts, dtype=float)
    ends = np.asarray(ends, dtype=float)
    w = np.broadcast_to(np.asarray(weights, dtype=float), starts.shape)
    keep = ends > starts
    starts, ends, w = starts[keep], ends[keep], w[keep]
    if starts.size == 0:
        return np.empty(0), np.empty(0)
    times = np.concatenate([starts, ends])
    deltas = np.concatenate([w, -w])
    order = np.argsort(times, kind="stable")
    times, deltas = times[order], deltas[order]
    uniq, first = np.unique(times, return_index=True)
    values = np.cumsum(np.add.reduceat(deltas, first))
    values = np.round(values, _DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    return uniq, values


def evaluate_step(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Value of the step function ``(times, values)`` at each of ``at`` (0 before the first)."""
    at = np.asarray(at, dtype=float)
    if times.size == 0:
        return np.zeros_like(at)
    idx = np.searchsorted(times, at, side="right") - 1
    out = np.where(idx >= 0, values[np.clip(idx, 0, None)], 0.0)
    return out


def integrate_step(times: np.ndarray, values: np.ndarray, t0: float, t1: float) -> float:
    """Integral of the step function over ``[t0, t1]``."""
    if times.size == 0 or t1 <= t0:
        return 0.0
    grid = np.unique(np.concatenate([[t0, t1], times[(times > t0) & (times < t1)]]))
    vals = evaluate_step(times, values, grid[:-1])
    return float(np.sum(vals * np.diff(grid)))


@dataclass
class Utilization:
    """Node utilization of one experiment over the window ``[t0, t1]`` (epoch seconds).

    ``times`` are the breakpoints of all curves (``t0`` first, ``t1`` last);
    ``busy_nodes``, ``running_jobs`` and ``waiting_jobs`` hold on ``[times[i], times[i+1])``.
    """

    nodes: float
    t0: float
    t1: float
    times: np.ndarray
    busy_nodes: np.ndarray
    running_jobs: np.ndarray
    waiting_jobs: np.ndarray
    busy_node_seconds: float
    percent: float
    idle_node_seconds: dict[str, float]
    gaps: list[dict[str, Any]] = field(default_factory=list)
    peak_busy_nodes: float = 0.0
    num_runs: int = 0
    #: seconds during which more nodes were busy than available (see compute_utilization)
    overcommit_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (no curves)."""
        return {
            "nodes": self.nodes,
            "t0": self.t0,
            "t1": self.t1,
            "wall_seconds": self.t1 - self.t0,
            "num_runs": self.num_runs,
            "busy_node_seconds": self.busy_node_seconds,
            "available_node_seconds": self.nodes * (self.t1 - self.t0),
            "utilization_percent": self.percent,
            "peak_busy_nodes": self.peak_busy_nodes,
            "overcommit_seconds": self.overcommit_seconds,
            "idle_node_seconds": dict(self.idle_node_seconds),
            "num_idle_gaps": len(self.gaps),
        }

    def curve_table(self) -> dict[str, np.ndarray]:
        """Columns of the curve CSV: elapsed_s (from ``t0``), busy_nodes, running and
        waiting jobs; each row holds until the next row's time."""
        return {
            "elapsed_s": self.times - self.t0,
            "busy_nodes": self.busy_nodes,
            "running_jobs": np.rint(self.running_jobs).astype(np.int64),
            "waiting_jobs": np.rint(self.waiting_jobs).astype(np.int64),
        }


def compute_utilization(
    run_start: np.ndarray,
    run_end: np.ndarray,
    run_weight: np.ndarray | float,
    nodes: float | None = None,
    wait_start: np.ndarray | None = None,
    wait_end: np.ndarray | None = None,
    t0: float | None = None,
    t1: float | None = None,
) -> Utilization:
    """Busy nodes vs ``nodes`` available over ``[t0, t1]`` and the idle capacity by cause.

    ``nodes`` defaults to the peak of the busy-node curve, rounded up (the smallest
    allocation that could have run these jobs). ``t0``/``t1`` default to the first start and
    the last end of the runs. Utilization = busy node-seconds / (nodes * (t1 - t0)).
    An *idle gap* is a maximal interval where fewer than ``nodes`` nodes were busy and the
    cause (``launch latency`` if some job was waiting, else ``no runnable job``) is constant.
    ``overcommit_seconds`` is the time during which more than ``nodes`` (plus
    :data:`OVERCOMMIT_TOLERANCE`) were busy: a too small ``nodes``, or briefly a recording
    artefact of the backend (Balsam's serial mode writes a batch of starts before the errors
    of the same batch).
    """
    run_start = np.asarray(run_start, dtype=float)
    run_end = np.asarray(run_end, dtype=float)
    weight = np.broadcast_to(np.asarray(run_weight, dtype=float), run_start.shape)
    ok = np.isfinite(run_start) & np.isfinite(run_end) & (run_end > run_start)
    if not ok.any():
        raise ValueError("no job has both a start and a later end time")
    run_start, run_end, weight = run_start[ok], run_end[ok], weight[ok]
    t0 = float(run_start.min()) if t0 is None else float(t0)
    t1 = float(run_end.max()) if t1 is None else float(t1)
    b_times, b_vals = step_curve(run_start, run_end, weight)
    c_times, c_vals = step_curve(run_start, run_end, 1.0)
    if wait_start is not None and wait_end is not None:
        wait_start = np.asarray(wait_start, dtype=float)
        wait_end = np.asarray(wait_end, dtype=float)
        wok = np.isfinite(wait_start) & np.isfinite(wait_end)
        w_times, w_vals = step_curve(wait_start[wok], wait_end[wok], 1.0)
    else:
        w_times, w_vals = np.empty(0), np.empty(0)
    peak = float(b_vals.max()) if b_vals.size else 0.0
    if nodes is None:
        nodes = float(max(1.0, np.ceil(peak - 1e-9)))
    if nodes <= 0:
        raise ValueError(f"nodes must be positive, got {nodes}")

    grid = np.concatenate([[t0, t1], b_times, c_times, w_times])
    grid = np.unique(grid[(grid >= t0) & (grid <= t1)])
    busy = evaluate_step(b_times, b_vals, grid)
    running = evaluate_step(c_times, c_vals, grid)
    waiting = evaluate_step(w_times, w_vals, grid)
    dt = np.diff(grid)
    busy_ns = float(np.sum(busy[:-1] * dt))
    idle = np.clip(nodes - busy[:-1], 0.0, None)
    latency = waiting[:-1] > 0
    overcommit = float(np.sum(dt[busy[:-1] > nodes * (1 + OVERCOMMIT_TOLERANCE) + 1e-9]))
    idle_ns = {
        LAUNCH_LATENCY: float(np.sum(idle[latency] * dt[latency])),
        NO_RUNNABLE_JOB: float(np.sum(idle[~latency] * dt[~latency])),
    }
    span = t1 - t0
    percent = 100.0 * busy_ns / (nodes * span) if span > 0 else 0.0
    return Utilization(
        nodes=float(nodes),
        t0=t0,
        t1=t1,
        times=grid,
        busy_nodes=busy,
        running_jobs=running,
        waiting_jobs=waiting,
        busy_node_seconds=busy_ns,
        percent=percent,
        idle_node_seconds=idle_ns,
        gaps=_idle_gaps(grid, busy, latency, idle, nodes),
        peak_busy_nodes=peak,
        num_runs=int(run_start.size),
        overcommit_seconds=overcommit,
    )


def _idle_gaps(
    grid: np.ndarray, busy: np.ndarray, latency: np.ndarray, idle: np.ndarray, nodes: float
) -> list[dict[str, Any]]:
    """Maximal runs of segments with idle capacity and one cause."""
    has_idle = idle > 1e-9
    if not has_idle.any():
        return []
    # label: 0 = no idle, 1 = idle with no runnable job, 2 = idle with launch latency
    label = np.where(has_idle, np.where(latency, 2, 1), 0)
    change = np.flatnonzero(np.diff(label) != 0) + 1
    bounds = np.concatenate([[0], change, [label.size]])
    dt = np.diff(grid)
    gaps = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if label[lo] == 0:
            continue
        span = float(grid[hi] - grid[lo])
        idle_ns = float(np.sum(idle[lo:hi] * dt[lo:hi]))
        gaps.append(
            {
                "start": float(grid[lo]),
                "end": float(grid[hi]),
                "seconds": span,
                "idle_node_seconds": idle_ns,
                "mean_idle_nodes": idle_ns / span if span > 0 else 0.0,
                "cause": LAUNCH_LATENCY if label[lo] == 2 else NO_RUNNABLE_JOB,
            }
        )
    return gaps


def cumulative_events(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted finite event times and the running count (1, 2, ...) after each."""
    t = np.sort(np.asarray(times, dtype=float))
    t = t[np.isfinite(t)]
    return t, np.arange(1, t.size + 1)


def best_so_far(objectives: np.ndarray, maximize: bool = True) -> np.ndarray:
    """Running best of ``objectives`` (NaN = failed, ignored; NaN until the first success)."""
    obj = np.asarray(objectives, dtype=float)
    fill = -np.inf if maximize else np.inf
    filled = np.where(np.isnan(obj), fill, obj)
    best = np.maximum.accumulate(filled) if maximize else np.minimum.accumulate(filled)
    return np.where(np.isinf(best) & (best == fill), np.nan, best)


def bin_step(times: np.ndarray, values: np.ndarray, edges: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time-average, minimum and maximum of a step function within each bin of ``edges``.

    Exact for step functions (the average is the integral over the bin divided by its
    width), so a plot of many thousands of breakpoints can be drawn from a few thousand
    bins without changing the area under the curve.
    """
    edges = np.asarray(edges, dtype=float)
    grid = np.unique(np.concatenate([edges, times[(times > edges[0]) & (times < edges[-1])]]))
    vals = evaluate_step(times, values, grid[:-1])
    area = np.concatenate([[0.0], np.cumsum(vals * np.diff(grid))])
    at_edges = np.interp(edges, grid, area)
    mean = np.diff(at_edges) / np.diff(edges)
    first = np.searchsorted(grid, edges[:-1], side="left")
    vmin = np.minimum.reduceat(vals, first)
    vmax = np.maximum.reduceat(vals, first)
    return mean, vmin, vmax
