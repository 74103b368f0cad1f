"""Issue 18: ``hpcnas ray-submit`` on the virtual 4-node Slurm cluster
(:mod:`tests.support.virtual_cluster`): a Ray head and 3 Ray workers on distinct nodes, and
evaluations observed on every node.

As the ordinary user ``hpcnastest``: ray-submit renders the Slurm script and calls ``sbatch``
for 4 nodes; inside the allocation the head starts on the first node and one worker per other
node through ``srun``, each with a temp dir of its own (the virtual nodes share ``/tmp``, as
sites with a shared ``TMPDIR`` do). The run function reports the host it ran on.
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

pytestmark = [pytest.mark.e2e, pytest.mark.ray, pytest.mark.slurm]

USER = "hpcnastest"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_EVALS = 24


def test_ray_submit_spreads_evaluations_over_four_virtual_nodes(virtual_cluster):
    cluster = virtual_cluster
    require("ray", importlib.util.find_spec("ray") is not None, "pip install 'hpcnas[ray]'")
    try:
        info = pwd.getpwnam(USER)
    except KeyError:
        require(f"user {USER}", False, f"useradd {USER}")
    base = os.path.join(cluster.root, f"ray-vc-{os.getpid()}")
    home = os.path.join(base, "home")
    os.makedirs(home)
    for path in (base, home):
        os.chown(path, info.pw_uid, info.pw_gid)
    env = {"HOME": home, "PYTHONPATH": ROOT, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
           "HPCNAS_TEST_SLEEP": "2"}
    submit = cluster.run(
        [sys.executable, "-m", "hpcnas.cli.main", "ray-submit", "hps", "random", "-w", "rayvc", "-n", "4",
         "-t", "10", "-q", cluster.partition, "--scheduler", "slurm", "--cpus-per-node", "2",
         "--problem", "tests.support.balsam_problems.Problem", "--run", "tests.support.balsam_problems.host_sleep",
         "--max-evals", str(MAX_EVALS), "--num-workers", "8", "--seed", "3"],
        user=USER, env=env, cwd=base, timeout=120, check=False,
    )
    assert submit.returncode == 0, submit.stdout + submit.stderr
    job_id = submit.stdout.split("submitted slurm job ")[1].split(":")[0]
    exp_dir = os.path.join(base, "rayvc")
    started = time.monotonic()
    state = cluster.wait_job(job_id, timeout=300, poll=2)
    log_path = os.path.join(exp_dir, f"ray-cluster-{job_id}.out")
    log = open(log_path).read() if os.path.exists(log_path) else "(no job output)"
    assert state == "COMPLETED", f"job {job_id} ended {state}:\n{log[-4000:]}"
    print(f"ray-submit job {job_id} on 4 virtual nodes completed in {time.monotonic() - started:.0f} s")
    assert "4 Ray node(s) up" in log, log[-3000:]
    df = pd.read_csv(os.path.join(exp_dir, "results.csv"))
    assert len(df) == MAX_EVALS and (df.status == "DONE").all(), df[["status", "error"]]
    per_node = df["m:host"].value_counts().to_dict()
    print(f"evaluations per node: {per_node}")
    assert sorted(per_node) == sorted(cluster.node_names), per_node  # every node ran evaluations
    leftovers = subprocess.run(["pgrep", "-f", f"hpcnas-ray-{USER}-{job_id}"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", leftovers.stdout
