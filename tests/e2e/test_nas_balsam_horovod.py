"""AgEBO with the Balsam evaluator in MPI mode: every evaluation is a 2-rank Horovod training.

As in ``test_balsam_mpi.py`` the search master runs outside the one-node launcher, which runs the
evaluations with ``mpirun``. The evaluation runner app is registered with the Horovod
environment's Python for this test (and restored after), the problem puts ``num_ranks=2`` in
every configuration and ``hpcnas.nas.run.horovod.run.resources`` turns it into 2 ranks per job.

12 evaluations (3 random, then 9 of aging evolution with BO over the training settings) run
one after the other (one node, whole nodes per job in mpi mode), so the cost of one sets the
test's length: about 10 s on 2 cores (up to twice that on a loaded machine), mostly TensorFlow and Horovod
starting in both ranks (see ``hpcnas/nas/run/horovod.py`` and ``TinyMpiProblem``). The
launcher's service loop runs every 0.2 s instead of Balsam's 1 s (``SERVICE_PERIOD`` in
``~/.balsam/settings.json``, restored afterwards): the loop's period is the wait between one
job's end and the next job's ``mpirun``.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
from typing import Iterator

import pandas as pd
import pytest

from hpcnas.balsam.jobs import find_marker
from tests.e2e.test_nas_data_parallel import horovod_python
from tests.support.balsam_env import run_master_with_launcher
from tests.support.components import require

pytestmark = [pytest.mark.e2e, pytest.mark.balsam, pytest.mark.mpi, pytest.mark.horovod, pytest.mark.tf]

MAX_EVALS = 12
SERVICE_PERIOD = 0.2
REGISTER = ("from hpcnas.balsam.apps import RUNNER_APP, register_apps\nfrom hpcnas.balsam.connect import connect\n"
            "register_apps(python={python!r}, names=[RUNNER_APP], db=connect())\n")


@contextlib.contextmanager
def launcher_service_period(env, seconds: float) -> Iterator[None]:
    """Balsam's ``SERVICE_PERIOD`` for the launchers started inside (read when a launcher starts).

    The launcher also quits after 10 idle loops, i.e. after ``10 * seconds`` with nothing running,
    runnable or waiting for a transition; the search keeps 2 jobs in flight for 1 node, so the
    next job is queued while one runs.
    """
    path = os.path.join(env.home, ".balsam", "settings.json")
    with open(path, encoding="utf-8") as fh:
        original = fh.read()
    settings = json.loads(original)
    settings["SERVICE_PERIOD"] = seconds
    with open(path, "w", encoding="utf-8") as fh:  # in place: the file keeps its owner
        json.dump(settings, fh, indent=1, sort_keys=True)
    try:
        yield
    finally:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(original)


@pytest.mark.timeout(1500)
def test_agebo_balsam_mpi_two_rank_horovod_evaluations(balsam_env, balsam_workflow):
    env, wf = balsam_env, balsam_workflow
    hvd_python = horovod_python()
    require("mpirun", shutil.which("mpirun", path=env.base_env["PATH"]) is not None, "MPICH mpirun on PATH")
    out_dir = os.path.join(env.home, f"out-{wf}")
    env.python(REGISTER.format(python=hvd_python))
    master_log = os.path.join(env.base, f"master-{wf}.log")
    argv = [
        sys.executable, "-m", "hpcnas.cli.main", "nas", "agebo", "--evaluator", "balsam", "--workflow", wf,
        "--num-workers", "2", "--num-threads-per-rank", "1",
        "--problem", "hpcnas.nas.problems.combo.problem.TinyMpiProblem", "--run", "hpcnas.nas.run.horovod.run",
        "--max-evals", str(MAX_EVALS), "--population-size", "3", "--sample-size", "2", "--seed", "2",
        "--no-progress", "--output-dir", out_dir, "--timeout", "1200",
    ]
    # the one-node launcher leaves after 10 idle loops (2 s here): it starts once evaluations are queued
    with launcher_service_period(env, SERVICE_PERIOD):
        try:
            master = run_master_with_launcher(env, wf, argv, master_log, "mpi", 1300, TF_CPP_MIN_LOG_LEVEL="3")
        finally:
            env.python(REGISTER.format(python=sys.executable))
    log = os.path.join(env.base, f"launcher-{wf}-mpi.log")
    tails = "".join(open(p, errors="replace").read()[-3000:] for p in (master_log, log) if os.path.exists(p))
    assert master.returncode == 0, tails

    results = pd.read_csv(os.path.join(out_dir, "results.csv"))
    assert len(results) == MAX_EVALS
    assert [c for c in results.columns if c.startswith("p:")] == ["p:arch_seq", "p:batch_size", "p:learning_rate", "p:num_ranks"]
    assert (results["status"] == "DONE").all(), results[["status", "error"]].to_string()
    assert (results["p:num_ranks"] == 2).all()
    assert all(math.isfinite(v) for v in results["objective"])
    for arch in results["p:arch_seq"]:
        assert len(json.loads(arch)) == 5

    rows = env.query(
        f"list(BalsamJob.objects.filter(workflow={wf!r}).values('state', 'ranks_per_node', 'num_nodes', 'data'))"
    )
    assert len(rows) == MAX_EVALS
    summary = [(r["ranks_per_node"], r["num_nodes"], r["state"]) for r in rows]
    # the run ended (the launcher may be stopped before its post-processing step)
    assert all(rp == 2 and nn == 1 and st in ("RUN_DONE", "POSTPROCESSED", "JOB_FINISHED") for rp, nn, st in summary), summary
    # every evaluation was a 2-replica Horovod training: rank 0's report in each job's output
    # (the Horovod environment has no Balsam/Django, so the runner reports by its marker line)
    outputs = env.query(
        f"[__import__('os').path.join(j.working_directory, j.name + '.out') for j in BalsamJob.objects.filter(workflow={wf!r})]"
    )
    reports = [find_marker(open(path, errors="replace").read()) or {} for path in outputs]
    assert len(reports) == MAX_EVALS
    assert all(rep.get("metadata", {}).get("num_replicas") == 2 for rep in reports), reports
    assert all(rep.get("status") == "DONE" and math.isfinite(rep["objective"]) for rep in reports), reports
