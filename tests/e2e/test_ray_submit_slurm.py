"""Issue 6, real test: ``hpcnas ray-submit ... --scheduler slurm`` on a one-node Slurm cluster.

As the ordinary user ``hpcnastest`` (through ``runuser``): ray-submit renders the Slurm script
and calls ``sbatch``; inside the allocation the script starts a Ray head (token auth, private
temp dir), waits for the node, runs a 20-evaluation AMBS search with the ray evaluator and
stops Ray. The test checks the job completed, results.csv holds 20 successful evaluations run
by Ray workers, and no Ray process of the job is left behind.
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.support.components import require
from tests.support.slurm_cluster import slurm_cluster  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.ray, pytest.mark.slurm]

USER = "hpcnastest"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_EVALS = 20


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_ray_submit_runs_ambs_inside_a_slurm_allocation(slurm_cluster):  # noqa: F811
    cluster = slurm_cluster
    require("ray", importlib.util.find_spec("ray") is not None, "pip install 'hpcnas[ray]'")
    require(f"user {USER}", _user_exists(USER), f"useradd {USER}")
    info = pwd.getpwnam(USER)
    base = os.path.join(cluster.root, f"ray-submit-{os.getpid()}")
    home = os.path.join(base, "home")
    os.makedirs(home)
    for path in (base, home):
        os.chown(path, info.pw_uid, info.pw_gid)
    env = {"HOME": home, "PYTHONPATH": ROOT, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}

    submit = cluster.run(
        [sys.executable, "-m", "hpcnas.cli.main", "ray-submit", "hps", "ambs", "-w", "raytest", "-n", "1",
         "-t", "10", "-q", cluster.partition, "--scheduler", "slurm", "--cpus-per-node", "2",
         "--problem", "hpcnas.benchmark.polynome2.Problem", "--run", "hpcnas.benchmark.polynome2.run",
         "--max-evals", str(MAX_EVALS), "--seed", "7"],
        user=USER, env=env, cwd=base, timeout=120, check=False,
    )
    assert submit.returncode == 0, submit.stdout + submit.stderr
    assert "submitted slurm job" in submit.stdout
    job_id = submit.stdout.split("submitted slurm job ")[1].split(":")[0]
    exp_dir = os.path.join(base, "raytest")
    script = open(os.path.join(exp_dir, "ray-submit.sh")).read()
    assert "--evaluator ray --ray-address" in script

    started = time.monotonic()
    state = cluster.wait_job(job_id, timeout=240, poll=2)
    log_path = os.path.join(exp_dir, f"ray-cluster-{job_id}.out")
    log = open(log_path).read() if os.path.exists(log_path) else "(no job output)"
    assert state == "COMPLETED", f"job {job_id} ended {state}:\n{log[-4000:]}"
    print(f"ray-submit job {job_id} completed in {time.monotonic() - started:.0f} s after submission")

    assert "1 Ray node(s) up" in log, log[-3000:]
    assert "search exited with status 0" in log, log[-3000:]
    df = pd.read_csv(os.path.join(exp_dir, "results.csv"))
    assert len(df) == MAX_EVALS
    assert (df.status == "DONE").all(), df[["status", "error"]]
    assert df.worker.str.startswith("ray-").all()
    assert df.objective.max() <= 0.0  # polynome2's optimum is 0
    # the job's Ray processes (named after its private temp dir) are gone
    leftovers = subprocess.run(["pgrep", "-f", f"hpcnas-ray-{USER}-{job_id}"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", leftovers.stdout
