"""Issue 6 on Balsam: an ASHA search whose evaluations are Balsam jobs is stopped early.

The master (``hpcnas hps asha --evaluator balsam``) runs outside a serial-mode launcher; the
scheduler's address travels in each job's ``environ_vars`` (``host/port``), every evaluation
reports per epoch to it from inside the Balsam job, weak ones are stopped, and their reports
come back through the job's ``data``: ``STOPPED`` rows with their last objective in results.csv,
``RUN_DONE`` (not ``RUN_ERROR``) in Balsam.
"""
from __future__ import annotations

import os
import sys

import pandas as pd
import pytest

from tests.support.balsam_env import run_master_with_launcher

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

MAX_EVALS = 12


def test_asha_stops_balsam_jobs_early_and_reads_their_reports(balsam_env, balsam_workflow):
    env, wf = balsam_env, balsam_workflow
    out_dir = os.path.join(env.home, f"out-{wf}")
    master_log = os.path.join(env.base, f"master-{wf}.log")
    argv = [
        sys.executable, "-m", "hpcnas.cli.main", "hps", "asha", "--searcher", "random", "--evaluator", "balsam",
        "--workflow", wf, "--num-workers", "2", "--num-evals-per-node", "2",
        "--problem", "tests.support.balsam_problems.Problem", "--run", "tests.support.balsam_problems.learning_curve",
        "--max-resource", "9", "--reduction-factor", "3", "--max-evals", str(MAX_EVALS), "--seed", "4",
        "--no-progress", "--output-dir", out_dir, "--timeout", "400",
    ]
    master = run_master_with_launcher(env, wf, argv, master_log, "serial", 450)
    log = open(master_log, errors="replace").read()
    assert master.returncode == 0, log[-3000:]

    results = pd.read_csv(os.path.join(out_dir, "results.csv"))
    assert len(results) == MAX_EVALS
    assert set(results["status"]) <= {"DONE", "STOPPED"}, results[["status", "error"]].to_string()
    stopped, done = results[results["status"] == "STOPPED"], results[results["status"] == "DONE"]
    assert len(stopped) >= 3 and len(done) >= 1, results[["p:x", "status", "objective"]]
    assert stopped["objective"].notna().all()  # the last reported objective came back

    rows = env.query(
        f"list(BalsamJob.objects.filter(workflow={wf!r}, name__startswith='eval-').values('state', 'data', 'environ_vars'))"
    )
    assert len(rows) == MAX_EVALS
    assert all("HPCNAS_MF_ADDRESS=" in r["environ_vars"] for r in rows)
    by_status: dict[str, list[int]] = {}
    for row in rows:
        report = row["data"]["hpcnas_result"]
        by_status.setdefault(report["status"], []).append(len(report["reports"]))
        assert row["state"] in ("RUN_DONE", "POSTPROCESSED", "JOB_FINISHED"), row["state"]  # a stop is no error
    # stopped jobs really ended early (fewer than 9 epochs reported); finished ones trained all 9
    assert by_status["STOPPED"] and max(by_status["STOPPED"]) < 9, by_status
    assert by_status["DONE"] and min(by_status["DONE"]) == 9, by_status
