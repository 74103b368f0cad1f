"""Issue 3, real end-to-end test 4: kill -9 the launcher mid-search, start it again.

The whole launcher process group (launcher, ensemble, search master, running evaluations) is
killed with SIGKILL, as at the end of an allocation. ``hpcnas balsam-recover`` releases the
jobs the dead launcher held, a new launcher restarts the search job, the search resumes from
results.csv and the DB (finished evaluations re-read, pending ones adopted) and ends with
exactly max-evals distinct evaluations: none lost, none duplicated. The first attempt's
``search.out`` is kept as ``search.out.1``.
"""
from __future__ import annotations

import glob
import os
import signal
import time

import pandas as pd
import pytest

from tests.support.balsam_env import eval_rows, search_args, wait_for_evaluations_final, wait_for_state

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

MAX_EVALS = 14


def test_kill_launcher_then_restart_resumes_without_loss_or_duplicates(balsam_env, balsam_workflow):
    env, wf = balsam_env, balsam_workflow
    env.balsam(
        "job", "--name", "search", "--workflow", wf, "--application", "AMBS", "--node-packing-count", "1000",
        "--args", search_args(MAX_EVALS, "sleep_or_crash", "--queue-ahead 2"), "--yes",
    )
    first = env.start_launcher(wf, "serial", log_name=f"launcher-{wf}-1.log")
    deadline = time.time() + 300
    finished = 0
    while time.time() < deadline and first.poll() is None:
        states = [r["state"] for r in eval_rows(env, wf)]
        finished = sum(s in ("RUN_DONE", "JOB_FINISHED", "FAILED", "RUN_ERROR") for s in states)
        if finished >= 4 and "RUNNING" in states:
            break
        time.sleep(0.5)
    assert first.poll() is None, "the launcher ended before it could be killed"
    assert finished >= 4
    env.stop(first, sig=signal.SIGKILL, timeout=10)
    time.sleep(1)
    before = eval_rows(env, wf)
    assert len(before) < MAX_EVALS, "the search finished before the kill; nothing to resume"
    search_state = env.query(f"BalsamJob.objects.get(workflow={wf!r}, name='search').state")
    assert search_state == "RUNNING"  # the dead launcher still holds it

    recovered = env.hpcnas("balsam-recover", "--workflow", wf)
    assert "released" in recovered.stdout and not recovered.stdout.startswith("hpcnas: released 0 ")

    second = env.start_launcher(wf, "serial", log_name=f"launcher-{wf}-2.log")
    try:
        state = wait_for_state(env, f"workflow={wf!r}, name='search'", ("JOB_FINISHED", "FAILED"), second, 420)
        if state == "JOB_FINISHED":  # the launcher's transitions finish its last evaluations
            wait_for_evaluations_final(env, wf, second, 120)
    finally:
        env.stop(second)
    search_dir = glob.glob(os.path.join(env.db_path, "data", wf, "search_*"))[0]
    out = open(os.path.join(search_dir, "search.out")).read()
    assert state == "JOB_FINISHED", out[-3000:]
    # the killed attempt's output is kept beside the new one (hpcnas.balsam.outfiles), with its
    # progress lines (no terminal: one line per evaluation)
    first_out = open(os.path.join(search_dir, "search.out.1")).read()
    assert "hpcnas: hps ambs | evaluator balsam" in first_out and "hpcnas: [ 1/14] job " in first_out, \
        first_out[-2000:] + "\n-----\n" + out[:3000]
    assert "resuming from" in out and not os.path.exists(os.path.join(search_dir, "search.out.2"))

    rows = eval_rows(env, wf)
    job_ids = [r["data"]["hpcnas_eval"]["job_id"] for r in rows]
    assert len(rows) == MAX_EVALS and len(set(job_ids)) == MAX_EVALS  # no duplicate job was created
    assert {r["state"] for r in rows} <= {"JOB_FINISHED", "FAILED"}
    # every job that existed at the kill is still the same job (adopted, not re-created)
    assert {r["name"] for r in before} <= {r["name"] for r in rows}

    results = pd.read_csv(os.path.join(search_dir, "results.csv"))
    assert len(results) == MAX_EVALS
    assert sorted(results["job_id"]) == sorted(job_ids)
    configs = [round(x, 12) for x in results["p:x"]]
    assert len(set(configs)) == MAX_EVALS  # distinct evaluations
    assert (results["status"] == "FAILED").sum() == 1  # the crash at x = 7.25, once
