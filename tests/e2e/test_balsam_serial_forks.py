"""hpcnas's evaluations in serial mode start as forks of the worker's fork server
(:mod:`hpcnas.balsam.forkserver`) under the real launcher, and a crash (SIGKILL) is still
Balsam's ``RUN_ERROR``."""
from __future__ import annotations

import glob
import os

import pandas as pd
import pytest

from tests.support.balsam_env import eval_rows, search_args, wait_for_state

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

MAX_EVALS = 4


def test_serial_evaluations_are_forks_and_a_crash_is_run_error(balsam_env, balsam_workflow):
    env, wf = balsam_env, balsam_workflow
    env.balsam("job", "--name", "search", "--workflow", wf, "--application", "AMBS", "--node-packing-count",
               "1000", "--args", search_args(MAX_EVALS, "parent_or_crash"), "--yes")
    launcher = env.start_launcher(wf, "serial", HPCNAS_TEST_SLEEP="0.2")
    try:
        state = wait_for_state(env, f"workflow={wf!r}, name='search'", ("JOB_FINISHED", "FAILED"), launcher, 240)
    finally:
        env.stop(launcher)
    assert state == "JOB_FINISHED"
    search_dir = glob.glob(os.path.join(env.db_path, "data", wf, "search_*"))[0]
    results = pd.read_csv(os.path.join(search_dir, "results.csv"))
    assert len(results) == MAX_EVALS
    done = results[results["status"] == "DONE"]
    assert len(done) == MAX_EVALS - 1  # the starting point x = 7.25 kills itself
    assert done["m:parent"].str.contains("-m hpcnas.balsam.zygote").all(), done["m:parent"].tolist()
    histories = [r["state_history"] for r in eval_rows(env, wf)]
    assert sum("RUN_ERROR" in h for h in histories) == 1
    outs = glob.glob(os.path.join(env.db_path, "data", wf, "eval-*", "eval-*.out"))
    assert outs and not any("fork server" in open(p).read() for p in outs)
