"""Flows: the guide's NAS apps, ``EVO`` (and ``RAN``, ``PPO``) registered with ``balsam app`` under their
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


PPO_EVALS = 12  # 6 per agent: 3 synchronous batches of 2


def test_ppo_app_with_two_agents_on_the_launcher(flows):
    """The guide's PPO app, 2 agents as 2 MPI ranks (``mpirun -n 2``, as ``--num-nodes 2`` would start
    them in an MPI-mode launcher), each with 2 of the 4 workers; evaluations run by the launcher."""
    require("tensorflow", importlib.util.find_spec("tensorflow") is not None, "pip install 'hpcnas[tf]'")
    require("mpi4py", importlib.util.find_spec("mpi4py") is not None, "pip install 'hpcnas[mpi]'")
    mpirun = shutil.which("mpirun", path=flows.env.base_env["PATH"])
    require("mpirun", mpirun is not None, "MPICH mpirun on PATH")
    app = flows.sh('balsam app --name PPO --exec "$(which python) -m hpcnas.search.nas.ppo"\nbalsam ls apps\n')
    assert app.returncode == 0 and "PPO" in app.stdout, transcript(app)
    out, wf = os.path.join(flows.env.home, "nas-ppo"), "NASPPO"
    log_path = os.path.join(flows.env.base, "nas-ppo.log")
    master = run_master_with_launcher(
        flows.env, wf,
        [mpirun, "-n", "2", sys.executable, "-m", "hpcnas.search.nas.ppo", "--evaluator", "balsam", "--workflow", wf,
         "--num-workers", "4", "--num-evals-per-node", "4", "--run", "tests.support.ppo_problems.match",
         "--problem", "tests.support.ppo_problems.Problem", "--ent-coef", "0.01", "--noptepochs", "4",
         "--network", "ppo_lnlstm_32", "--gamma", "1.0", "--lam", "0.95", "--max-evals", str(PPO_EVALS),
         "--seed", "4", "--no-progress", "--output-dir", out],
        log_path, "serial", 300, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3", HPCNAS_TEST_SLEEP="0.5",
    )
    with open(log_path, errors="replace") as fh:
        log = fh.read()
    assert master.returncode == 0, log[-4000:]
    assert "PPO: 2 agents, 4 evaluation workers, 2 per agent (0 unused)" in log
    assert "Traceback" not in log, log[-4000:]

    jobs = flows.env.query(f"[j['data']['hpcnas_eval']['search'] for j in BalsamJob.objects.filter(workflow={wf!r})"
                           f".values('data')]")
    by_agent = {tag.rsplit("/", 1)[-1]: jobs.count(tag) for tag in set(jobs)}
    assert by_agent == {"agent0": PPO_EVALS // 2, "agent1": PPO_EVALS // 2}, by_agent  # each agent its share

    updates = [pd.read_csv(os.path.join(out, f"agent{r}", "ppo_updates.csv")) for r in (0, 1)]
    assert [len(u) for u in updates] == [3, 3]  # one update per batch of 2
    assert (updates[0]["episodes"] == 2).all() and (updates[1]["episodes"] == 2).all()
    # synchronised: the same weights after every update, and they changed at every update
    assert updates[0]["checksum"].tolist() == updates[1]["checksum"].tolist()
    assert updates[0]["checksum"].nunique() == 3
    merged = pd.read_csv(os.path.join(out, "results.csv"))
    assert len(merged) == PPO_EVALS and sorted(merged["agent"].unique()) == [0, 1]
    assert (merged["status"] == "DONE").all(), merged[["agent", "status", "error"]]
    for r in (0, 1):  # each agent's own results.csv
        assert len(pd.read_csv(os.path.join(out, f"agent{r}", "results.csv"))) == PPO_EVALS // 2
