"""Flows: the guide's NAS apps, ``EVO`` (and ``RAN``) registered with ``balsam app`` under their
DeepHyper module names, evaluations in MPI mode through the real ``balsam launcher``.

A workstation launcher is one node and MPI mode gives whole nodes, so the search runs beside the
launcher (``--num-workers 1``), as on a login node, while ``balsam launcher --job-mode mpi``
runs each training with ``mpirun``. (The guide's variant with the search job inside the
launcher needs two nodes; on one node it fails with the one-line "no room for evaluations".)
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys

import pandas as pd
import pytest

from tests.flows.conftest import transcript
from tests.support.balsam_env import run_master_with_launcher
from tests.support.components import require

pytestmark = [pytest.mark.e2e, pytest.mark.balsam, pytest.mark.mpi, pytest.mark.tf]

PROBLEM = "hpcnas.nas.problems.combo.problem.TinyProblem"


def test_evo_app_with_mpi_mode_evaluations(flows):
    require("tensorflow", importlib.util.find_spec("tensorflow") is not None, "pip install 'hpcnas[tf]'")
    require("mpirun", shutil.which("mpirun", path=flows.env.base_env["PATH"]) is not None, "MPICH mpirun on PATH")
    apps = flows.sh(
        'balsam app --name EVO --exec "$(which python) -m hpcnas.search.nas.regevo"\n'
        'balsam app --name RAN --exec "$(which python) -m hpcnas.search.nas.full_random"\n'
        "balsam ls apps\n")
    assert apps.returncode == 0 and "EVO" in apps.stdout and "RAN" in apps.stdout, transcript(apps)
    out = os.path.join(flows.env.home, "nas-evo")
    master = run_master_with_launcher(
        flows.env, "NASEVO",
        [sys.executable, "-m", "hpcnas.search.nas.regevo", "--evaluator", "balsam", "--workflow", "NASEVO",
         "--num-workers", "1", "--run", "hpcnas.nas.run.alpha.run", "--problem", PROBLEM, "--max-evals", "1",
         "--seed", "3", "--no-progress", "--output-dir", out],
        os.path.join(flows.env.base, "nas-evo.log"), "mpi", 300, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3",
    )
    with open(os.path.join(flows.env.base, "nas-evo.log"), errors="replace") as fh:
        log = fh.read()
    assert master.returncode == 0, log[-3000:]
    assert "hpcnas nas age" in log  # the note: DeepHyper's regevo is hpcnas's aging evolution
    results = pd.read_csv(os.path.join(out, "results.csv"))
    assert len(results) == 1 and (results["status"] == "DONE").all(), results[["status", "error"]]
    assert "p:arch_seq" in results.columns
