"""Pure timeline computations on synthetic timelines with hand-computed figures."""
from __future__ import annotations

import numpy as np
import pytest

from hpcnas.analytics.timeline import (
    LAUNCH_LATENCY,
    NO_RUNNABLE_JOB,
    best_so_far,
    compute_utilization,
    evaluate_step,
    integrate_step,
    step_curve,
)


def test_step_curve_sums_weights_and_returns_to_zero():
    times, values = step_curve(np.array([0, 5, 5]), np.array([10, 7, 20]), np.array([1, 2, 0.5]))
    assert times.tolist() == [0, 5, 7, 10, 20]
    assert values.tolist() == [1.0, 3.5, 1.5, 0.5, 0.0]


def test_packing_thirds_sum_to_exactly_one_node():
    times, values = step_curve(np.zeros(3), np.ones(3), np.full(3, 1 / 3))
    assert values.tolist() == [1.0, 0.0]


def test_back_to_back_jobs_do_not_overlap():
    times, values = step_curve(np.array([0.0, 10.0]), np.array([10.0, 20.0]), 1.0)
    assert values.max() == 1.0
    assert integrate_step(times, values, 0, 20) == pytest.approx(20.0)


def test_evaluate_step_before_first_breakpoint_is_zero():
    times, values = np.array([1.0, 2.0]), np.array([4.0, 0.0])
    assert evaluate_step(times, values, np.array([0.5, 1.0, 1.5, 2.0, 9.0])).tolist() == [
        0, 4, 4, 0, 0]


def _four_node_example():
    # A: 2 nodes [0,100); B, C packed two per node [0,50); D one node [50,80), waited [20,50)
    start = np.array([0.0, 0.0, 0.0, 50.0])
    end = np.array([100.0, 50.0, 50.0, 80.0])
    weight = np.array([2.0, 0.5, 0.5, 1.0])
    return compute_utilization(start, end, weight, nodes=4,
                               wait_start=np.array([20.0]), wait_end=np.array([50.0]))


def test_four_nodes_known_curve_and_percentage():
    u = _four_node_example()
    assert u.times.tolist() == [0.0, 20.0, 50.0, 80.0, 100.0]
    assert u.busy_nodes.tolist() == [3.0, 3.0, 3.0, 2.0, 0.0]
    assert u.running_jobs.tolist() == [3.0, 3.0, 2.0, 1.0, 0.0]
    assert u.waiting_jobs.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert u.busy_node_seconds == pytest.approx(280.0)
    assert u.percent == pytest.approx(70.0)
    assert u.idle_node_seconds[LAUNCH_LATENCY] == pytest.approx(30.0)
    assert u.idle_node_seconds[NO_RUNNABLE_JOB] == pytest.approx(90.0)
    assert [(g["start"], g["end"], g["cause"]) for g in u.gaps] == [
        (0.0, 20.0, NO_RUNNABLE_JOB), (20.0, 50.0, LAUNCH_LATENCY), (50.0, 100.0, NO_RUNNABLE_JOB)]
    assert u.gaps[2]["idle_node_seconds"] == pytest.approx(30.0 + 40.0)


def test_nodes_default_to_peak_rounded_up():
    u = compute_utilization(np.array([0.0, 0.0, 0.0]), np.array([10.0, 10.0, 5.0]),
                            np.array([0.5, 0.5, 0.5]))
    assert u.nodes == 2.0
    assert u.peak_busy_nodes == 1.5
    # busy: 1.5 on [0,5), 1.0 on [5,10) -> 12.5 of 20 node-seconds
    assert u.percent == pytest.approx(62.5)
    assert u.idle_node_seconds[LAUNCH_LATENCY] == 0.0


def test_full_allocation_has_no_gap():
    u = compute_utilization(np.array([0.0, 0.0]), np.array([10.0, 10.0]), 1.0, nodes=2)
    assert u.percent == pytest.approx(100.0)
    assert u.gaps == []


def test_no_run_is_an_error():
    with pytest.raises(ValueError):
        compute_utilization(np.array([np.nan]), np.array([5.0]), 1.0)


def test_best_so_far_maximize_and_minimize_skip_failures():
    obj = np.array([np.nan, 0.2, np.nan, 0.5, 0.3, 0.9])
    got = best_so_far(obj)
    assert np.isnan(got[0])
    assert got[1:].tolist() == [0.2, 0.2, 0.5, 0.5, 0.9]
    assert best_so_far(obj, maximize=False)[1:].tolist() == [0.2, 0.2, 0.2, 0.2, 0.2]


def test_bin_step_averages_are_exact_and_bound_by_min_max():
    from hpcnas.analytics.timeline import bin_step

    times = np.array([0.0, 1.0, 2.5, 4.0])
    values = np.array([2.0, 0.0, 4.0, 0.0])
    mean, vmin, vmax = bin_step(times, values, np.array([0.0, 2.0, 4.0]))
    # [0,2): 2 for 1 s, 0 for 1 s -> 1; [2,4): 0 for 0.5 s, 4 for 1.5 s -> 3
    assert mean.tolist() == [1.0, 3.0]
    assert vmin.tolist() == [0.0, 0.0] and vmax.tolist() == [2.0, 4.0]


def test_many_breakpoints_plot_keeps_area(tmp_path):
    from hpcnas.analytics.timeline import bin_step

    rng = np.random.default_rng(1)
    start = rng.uniform(0, 1000, 20_000)
    end = start + rng.uniform(1, 50, 20_000)
    u = compute_utilization(start, end, 0.5)
    edges = np.linspace(u.t0, u.t1, 1001)
    mean, vmin, vmax = bin_step(u.times, u.busy_nodes, edges)
    assert np.sum(mean * np.diff(edges)) == pytest.approx(u.busy_node_seconds, rel=1e-9)
    assert np.all(vmin <= mean + 1e-9) and np.all(mean <= vmax + 1e-9)


def test_overcommit_seconds():
    # 2 nodes; a third job overlaps the other two during [4, 5)
    u = compute_utilization(np.array([0.0, 0.0, 4.0]), np.array([5.0, 10.0, 10.0]), 1.0, nodes=2)
    assert u.peak_busy_nodes == 3.0
    assert u.overcommit_seconds == pytest.approx(1.0)
    assert u.summary()["overcommit_seconds"] == pytest.approx(1.0)
