"""Several objectives on Balsam: each evaluation is a Balsam job that imports the wrapped run
function by its dotted path (``hpcnas.search.objectives.run_2_<hex>``), and its report carries
both objectives back through the job's ``data`` into results.csv."""
from __future__ import annotations

import os
import sys

import pandas as pd
import pytest

from tests.support.balsam_env import run_master_with_launcher

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

MAX_EVALS = 6


def test_ambs_with_two_objectives_on_balsam_jobs(balsam_env, balsam_workflow):
    env, wf = balsam_env, balsam_workflow
    out_dir = os.path.join(env.home, f"out-{wf}")
    master_log = os.path.join(env.base, f"master-{wf}.log")
    argv = [
        sys.executable, "-m", "hpcnas.cli.main", "hps", "ambs", "--evaluator", "balsam", "--workflow", wf,
        "--num-workers", "2", "--num-evals-per-node", "2", "--objectives", "left,right",
        "--problem", "tests.support.balsam_problems.Problem", "--run", "tests.support.mo_runs.two",
        "--max-evals", str(MAX_EVALS), "--seed", "2", "--no-progress", "--output-dir", out_dir, "--timeout", "300",
    ]
    master = run_master_with_launcher(env, wf, argv, master_log, "serial", 350)
    log = open(master_log, errors="replace").read()
    assert master.returncode == 0, log[-3000:]
    assert "on the Pareto front of left, right" in log, log[-2000:]

    results = pd.read_csv(os.path.join(out_dir, "results.csv"))
    assert len(results) == MAX_EVALS and set(results["status"]) == {"DONE"}, results[["status", "error"]]
    x = results["p:x"]
    assert (results["objective_0"] == -x ** 2).all() and (results["objective_1"] == -(x - 2) ** 2).all()
    assert results["objective"].equals(results["objective_0"])
    assert not [c for c in results.columns if "hpcnas_objectives" in c]  # not a metadata column

    rows = env.query(f"list(BalsamJob.objects.filter(workflow={wf!r}, name__startswith='eval-').values('data'))")
    assert len(rows) == MAX_EVALS
    assert all(len(r["data"]["hpcnas_result"]["metadata"]["__hpcnas_objectives__"]) == 2 for r in rows)
