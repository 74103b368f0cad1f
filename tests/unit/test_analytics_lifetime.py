"""Utilization over the launchers' whole lifetime (start-up, idle tail, gaps between launches)."""
from __future__ import annotations

import numpy as np
import pytest

from hpcnas.analytics.launcher_logs import launcher_lifetimes, launcher_nodes_from_logs
from hpcnas.analytics.utilization import lifetime_figures


def test_start_up_tail_and_the_time_between_launches_are_told_apart() -> None:
    # two launchers of 2 nodes: 0-100 s and 150-200 s; a 2-node run 10-90, a 1-node run 160-190
    life = lifetime_figures(np.array([10.0, 160.0]), np.array([90.0, 190.0]), np.array([2.0, 1.0]), 2.0,
                            [(150.0, 200.0), (0.0, 100.0)])
    assert life["launchers"] == 2 and life["seconds"] == 150.0
    assert life["between_launches_seconds"] == 50.0 and life["first_start_to_last_end_seconds"] == 200.0
    assert life["utilization_percent"] == pytest.approx(100 * 190 / 300)
    assert life["idle_node_seconds"] == {"launcher start-up": 40.0, "idle tail": 40.0,
                                         "launcher with no job": 0.0, "while jobs ran": 30.0}


def test_a_launcher_that_ran_nothing_and_overlapping_launchers() -> None:
    life = lifetime_figures(np.array([5.0]), np.array([15.0]), np.array([1.0]), 1.0,
                            [(0.0, 20.0), (10.0, 30.0), (40.0, 50.0)])
    assert life["seconds"] == 40.0 and life["between_launches_seconds"] == 10.0  # 0-30 counted once
    assert life["idle_node_seconds"]["launcher with no job"] == 10.0
    assert life["idle_node_seconds"]["launcher start-up"] == 5.0 and life["idle_node_seconds"]["idle tail"] == 15.0
    assert lifetime_figures(np.array([1.0]), np.array([2.0]), np.array([1.0]), 1.0, []) is None


def test_lifetimes_come_from_the_first_and_last_line_of_the_workflows_launcher_logs(tmp_path) -> None:
    log = tmp_path / "log"
    log.mkdir()
    (log / "launcher_a.log").write_text(
        "02-Dec-2026 04:47:08|4595|    INFO|balsam.launcher.launcher:506] Loading Balsam Launcher\n"
        "02-Dec-2026 04:47:08|4595|    INFO|balsam.launcher.worker:76] Built 3 DEFAULT workers\n"
        "  ... --wf-name=wfa\n"
        "02-Dec-2026 04:48:49|4602|    INFO|balsam.core.transitions:253] done\n")
    (log / "launcher_b.log").write_text(
        "02-Dec-2026 05:00:00|77|    INFO|balsam.launcher.launcher:506] --wf-filter=wfb\n"
        "02-Dec-2026 05:00:30|77|    INFO|balsam.launcher.worker:76] Built 5 DEFAULT workers\n")
    a0 = 1796186828.0  # 2026-12-02 04:47:08, read as UTC like the state histories
    assert launcher_lifetimes(str(tmp_path), "wfa") == [(a0, a0 + 101)]
    assert launcher_lifetimes(str(tmp_path), "wfb") == [(a0 + 772, a0 + 802)]
    assert len(launcher_lifetimes(str(tmp_path))) == 2 and launcher_lifetimes(str(tmp_path / "none")) == []
    assert launcher_nodes_from_logs(str(tmp_path), "wfa") == 3 and launcher_nodes_from_logs(str(tmp_path)) == 5
