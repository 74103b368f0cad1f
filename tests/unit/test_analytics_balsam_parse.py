"""Parsing Balsam state_history text and deriving runs, waits and finished runs (no DB)."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from hpcnas.analytics.launcher_logs import launcher_nodes_from_logs
from hpcnas.analytics.balsam_db import (
    node_weights,
    parse_state_history,
    timelines,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()


def line(t: float, state: str, msg: str = "") -> str:
    # the way Balsam's history_line() writes it: newline, right-justified to 46, message
    stamp = datetime.fromtimestamp(T0 + t, tz=timezone.utc).strftime("%m-%d-%Y %H:%M:%S.%f")
    return f"\n[{stamp} {state}] ".rjust(46) + msg


def history(*steps) -> str:
    return "".join(line(t, s, m) for t, s, *rest in steps for m in (rest[0] if rest else "",))


def test_parse_keeps_order_time_and_state():
    h1 = history((0, "CREATED"), (1.25, "PREPROCESSED", "ok [odd] text"), (2, "RUNNING"),
                 (12.5, "RUN_DONE"))
    h2 = history((0, "CREATED"), (3, "RUNNING"), (4, "RUN_ERROR", "exit 1\nTraceback [x]"))
    tr = parse_state_history(["a", "b"], [h1, h2])
    assert tr["job_id"].tolist() == ["a"] * 4 + ["b"] * 3
    assert tr["state"].tolist() == ["CREATED", "PREPROCESSED", "RUNNING", "RUN_DONE",
                                    "CREATED", "RUNNING", "RUN_ERROR"]
    assert (tr["time"] - T0).round(6).tolist() == [0, 1.25, 2, 12.5, 0, 3, 4]


def test_parse_empty():
    assert parse_state_history([], []).empty


def _jobs(rows):
    return pd.DataFrame(rows, columns=["job_id", "num_nodes", "ranks_per_node",
                                       "node_packing_count"])


def test_weights_serial_packing_and_mpi():
    jobs = _jobs([("p", 1, 1, 4), ("m", 3, 2, 1), ("r", 1, 8, 2)])
    assert node_weights(jobs).to_dict() == {"p": 0.25, "m": 3.0, "r": 1.0}
    assert node_weights(jobs, "mpi").to_dict() == {"p": 1.0, "m": 3.0, "r": 1.0}


def test_timelines_runs_waits_ends_with_retry_and_open_run():
    hists = {
        "a": history((0, "CREATED"), (1, "PREPROCESSED"), (2, "RUNNING"), (10, "RUN_TIMEOUT"),
                     (11, "RESTART_READY"), (15, "RUNNING"), (20, "RUN_DONE"),
                     (21, "JOB_FINISHED")),
        "b": history((0, "CREATED"), (5, "RUNNING")),  # still running at the snapshot
    }
    tr = parse_state_history(list(hists), list(hists.values()))
    runs, waits, ends = timelines(tr, _jobs([("a", 1, 1, 2), ("b", 2, 1, 1)]))
    runs = runs.assign(start=runs["start"] - T0, end=runs["end"] - T0)
    assert runs[["job_id", "start", "end", "weight"]].values.tolist() == [
        ["a", 2, 10, 0.5], ["a", 15, 20, 0.5], ["b", 5, 21, 2.0]]
    w = (waits[["start", "end"]] - T0).values.tolist()
    assert w == [[0, 2], [11, 15], [0, 5]]  # CREATED + PREPROCESSED merge into one wait
    assert ends["kind"].tolist() == ["timeout", "done"]


def test_launcher_nodes_from_logs(tmp_path):
    os.makedirs(tmp_path / "log")
    (tmp_path / "log" / "launcher_2026-01-01_000000.log").write_text(
        "01-Jan-2026 00:00:00|1|INFO|balsam.launcher.worker:76] Built 3 DEFAULT workers\n")
    (tmp_path / "log" / "launcher_2026-01-02_000000.log").write_text(
        "x] Built 8 THETA workers\n")
    (tmp_path / "log" / "service.log").write_text("Built 99 X workers\n")
    assert launcher_nodes_from_logs(str(tmp_path)) == 8
    assert launcher_nodes_from_logs(str(tmp_path / "none")) is None


@pytest.mark.parametrize("n", [1000])
def test_parse_many_jobs(n):
    h = history((0, "CREATED"), (1, "READY"), (2, "STAGED_IN"), (3, "PREPROCESSED"),
                (4, "RUNNING"), (9, "RUN_DONE"), (10, "POSTPROCESSED"), (11, "JOB_FINISHED"))
    tr = parse_state_history(np.arange(n), [h] * n)
    assert len(tr) == 8 * n


def test_stamps_across_leap_years_and_month_ends():
    from datetime import timedelta

    moments = [datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
               datetime(2000, 2, 29, 12, 0, 0, 1, tzinfo=timezone.utc),
               datetime(2024, 3, 1, 0, 0, 0, tzinfo=timezone.utc),
               datetime(2100, 1, 1, 6, 30, 15, 250000, tzinfo=timezone.utc)]
    moments += [moments[1] + timedelta(days=k * 37, seconds=k * 11) for k in range(1, 200)]
    hist = "".join(f"\n[{m.strftime('%m-%d-%Y %H:%M:%S.%f')} RUNNING] ".rjust(46)
                   for m in moments)
    tr = parse_state_history(["j"], [hist])
    assert tr["time"].tolist() == pytest.approx([m.timestamp() for m in moments], abs=1e-6)


def test_launcher_nodes_of_a_workflow_come_from_its_own_launcher(tmp_path):
    """Two launchers on one DB (a 4-node MPI one, a 3-node serial one): the serial workflow's
    utilization took 4 nodes from the other launcher's log."""
    os.makedirs(tmp_path / "log")
    (tmp_path / "log" / "launcher_2026-01-01_000000.log").write_text(
        "x] Built 4 SLURM workers\nx] Popen ... /db/data/mpiwf/eval-1_ab/eval-1.out\n")
    (tmp_path / "log" / "launcher_2026-01-02_000000.log").write_text(
        "x] Built 3 SLURM workers\nx] srun ... -m hpcnas.balsam.ensemble --num-workers 3 --wf-name=serialwf\n")
    assert launcher_nodes_from_logs(str(tmp_path), "serialwf") == 3
    assert launcher_nodes_from_logs(str(tmp_path), "mpiwf") == 4
    assert launcher_nodes_from_logs(str(tmp_path), "other") == 4  # no log names it: all logs
    assert launcher_nodes_from_logs(str(tmp_path)) == 4
