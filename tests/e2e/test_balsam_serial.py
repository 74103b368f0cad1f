"""Issue 3, real end-to-end test 1: the user flow in serial mode through the real Balsam launcher.

``balsam job --application AMBS --args '--evaluator balsam ...'`` + ``balsam launcher
--job-mode serial``: AMBS, 40 evaluations packed 2 per node, one configuration that crashes
its process. All 40 end in the DB, results.csv has 40 rows, packed evaluations overlapped in
time, the crash is a failed row.
"""
from __future__ import annotations

import glob
import os

import pandas as pd
import pytest

from hpcnas.balsam.jobs import run_times
from tests.support.balsam_env import eval_rows, search_args, wait_for_evaluations_final, wait_for_state

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

MAX_EVALS = 40


def test_serial_user_flow_ambs_40_evals_packed_2(balsam_env, balsam_workflow):
    env, wf = balsam_env, balsam_workflow
    env.balsam(
        "job", "--name", "search", "--workflow", wf, "--application", "AMBS", "--node-packing-count", "1000",
        "--args", search_args(MAX_EVALS, "sleep_or_crash"), "--yes",
    )
    launcher = env.start_launcher(wf, "serial", stock=True)  # `balsam launcher`, as users run it
    try:
        state = wait_for_state(env, f"workflow={wf!r}, name='search'", ("JOB_FINISHED", "FAILED"), launcher, 420)
        if state == "JOB_FINISHED":  # the launcher's transitions finish its last evaluations
            wait_for_evaluations_final(env, wf, launcher, 120)
    finally:
        env.stop(launcher)
    search_dirs = glob.glob(os.path.join(env.db_path, "data", wf, "search_*"))
    out = open(glob.glob(os.path.join(search_dirs[0], "search.out"))[0]).read() if search_dirs else ""
    assert state == "JOB_FINISHED", out[-3000:]
    assert "serial mode: 1 node(s) x 2 evals/node" in out and "-> 2 worker(s)" in out, out[-2000:]

    rows = eval_rows(env, wf)
    assert len(rows) == MAX_EVALS
    assert {r["state"] for r in rows} <= {"JOB_FINISHED", "FAILED"}
    assert all(r["node_packing_count"] == 2 for r in rows)

    results = pd.read_csv(os.path.join(search_dirs[0], "results.csv"))
    assert len(results) == MAX_EVALS
    assert results["job_id"].nunique() == MAX_EVALS
    failed = results[results["status"] != "DONE"]
    assert len(failed) == 1, results[["p:x", "status", "error"]]
    assert abs(failed["p:x"].iloc[0] - 7.25) < 1e-9
    assert "RUN_ERROR" in failed["error"].iloc[0] or "FAILED" in failed["error"].iloc[0]
    assert results.loc[results["status"] == "DONE", "objective"].notna().all()

    # packed evaluations ran at the same time (state_history RUNNING -> RUN_DONE intervals overlap)
    spans = sorted(run_times(r["state_history"])[:2] for r in rows if r["state"] == "JOB_FINISHED")
    overlaps = sum(1 for (s1, e1), (s2, e2) in zip(spans, spans[1:]) if s2 < e1)
    assert overlaps >= 5, spans[:10]
    # and results.csv times agree with the DB ones
    assert (results["end_time"] >= results["start_time"]).all()
