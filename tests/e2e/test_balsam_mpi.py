"""Issue 3, real end-to-end test 2: MPI mode, evaluations of 2 ranks each (real MPICH + mpi4py).

A workstation launcher has one node and MPI mode gives whole nodes, so the search master runs
outside the launcher (``hpcnas hps random --evaluator balsam --num-workers 1 --workflow WF``)
while ``balsam launcher --job-mode mpi`` runs the evaluations with ``mpirun -n 2``. The
categorical values include shell and Balsam metacharacters (``"; rm -rf ~; echo "``): each
must arrive in the run function as the exact string.
"""
from __future__ import annotations

import importlib.util
import os
import shutil

import pandas as pd
import pytest

from tests.support.balsam_problems import NASTY_TEXTS
from tests.support.components import require

pytestmark = [pytest.mark.e2e, pytest.mark.balsam, pytest.mark.mpi]

MAX_EVALS = 6


def test_mpi_mode_two_ranks_and_exact_strings(balsam_env, balsam_workflow, tmp_path):
    require("mpi4py", importlib.util.find_spec("mpi4py") is not None, "pip install 'hpcnas[mpi]'")
    env, wf = balsam_env, balsam_workflow
    require("mpirun", shutil.which("mpirun", path=env.base_env["PATH"]) is not None, "MPICH mpirun on PATH")
    out_dir = os.path.join(env.home, f"out-{wf}")
    launcher = env.start_launcher(wf, "mpi")
    try:
        proc = env.hpcnas(
            "hps", "random", "--evaluator", "balsam", "--workflow", wf, "--num-workers", "1",
            "--num-ranks-per-node", "2", "--problem", "tests.support.balsam_problems.TextProblem",
            "--run", "tests.support.balsam_problems.mpi_text", "--max-evals", str(MAX_EVALS),
            "--seed", "5", "--no-progress", "--output-dir", out_dir, "--timeout", "300",
            check=False, timeout=400,
        )
    finally:
        env.stop(launcher)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "1 worker(s) from --num-workers" in proc.stdout

    results = pd.read_csv(os.path.join(out_dir, "results.csv"), keep_default_na=False)
    assert len(results) == MAX_EVALS
    assert (results["status"] == "DONE").all(), results[["status", "error"]].to_string()

    rows = env.query(
        f"list(BalsamJob.objects.filter(workflow={wf!r}).values('state', 'ranks_per_node', 'num_nodes', 'data'))"
    )
    assert len(rows) == MAX_EVALS
    for row in rows:
        assert row["ranks_per_node"] == 2 and row["num_nodes"] == 1
        config = row["data"]["hpcnas_eval"]["config"]
        report = row["data"]["hpcnas_result"]
        assert report["status"] == "DONE" and report["rank"] == 0
        assert report["metadata"]["size"] == 2  # the run function saw COMM_WORLD.size == 2
        assert report["metadata"]["text"] == config["text"]  # byte-exact through Balsam and mpirun
        assert config["text"] in NASTY_TEXTS
    # the starting point is the most dangerous string; it ran and came back unchanged
    assert any(r["data"]["hpcnas_result"]["metadata"]["text"] == NASTY_TEXTS[0] for r in rows)
