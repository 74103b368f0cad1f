"""Issue 3, real end-to-end test 3: Balsam on a (one-node) Slurm cluster.

``hpcnas balsam-setup --machine slurm`` + ``hpcnas balsam-submit hps ambs ... --job-mode
serial`` → ``balsam submit-launch`` renders the shipped Slurm template → ``sbatch`` (as the
ordinary test user) → the job script starts the Balsam launcher (``python -m
hpcnas.balsam.launch``) inside the allocation, which runs the search master and its
evaluations through ``srun`` → the search reaches max-evals.

Also here: the fixture itself (jobs of an ordinary user, srun steps), the rendered ``srun``
line running MPI ranks inside an allocation, a submission refused by ``sbatch``, and the Cobalt
sites (Theta, ThetaGPU) through Balsam's real ``submit-launch`` with a recording ``qsub``.
"""
from __future__ import annotations

import glob
import os
import pwd
import re
import time

import pandas as pd
import pytest

from tests.support.slurm_cluster import slurm_cluster  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.balsam, pytest.mark.slurm]

MAX_EVALS = 10


def test_slurm_cluster_runs_steps_for_an_ordinary_user(slurm_cluster, tmp_path_factory):  # noqa: F811
    """The fixture itself: sbatch as a non-root user, a 2-task srun step inside the job."""
    out_dir = os.path.join(slurm_cluster.root, "smoke")
    os.makedirs(out_dir, exist_ok=True)
    os.chmod(out_dir, 0o777)
    proc = slurm_cluster.run(
        ["sbatch", "--parsable", "-n", "2", "-o", f"{out_dir}/%j.out",
         "--wrap", "id -un; srun -n 2 --ntasks-per-node 2 printenv SLURM_PROCID | sort"],
        user="nobody", cwd=out_dir,
    )
    job_id = proc.stdout.strip().split(";")[0]
    assert slurm_cluster.wait_job(job_id, timeout=60) == "COMPLETED"
    lines = open(os.path.join(out_dir, f"{job_id}.out")).read().split()
    assert lines == ["nobody", "0", "1"]


@pytest.mark.mpi
def test_srun_command_line_runs_mpi_ranks_in_an_allocation(slurm_cluster):  # noqa: F811
    """The line HpcnasSrunCommand renders, run inside a real allocation: 2 ranks of one
    mpi4py program (``HPCNAS_SRUN_MPI=pmi2`` hands MPICH its PMI) that reduce across ranks."""
    import sys

    from hpcnas.balsam.render import mpi_command_line
    from tests.support.components import require_module

    require_module("mpi4py", "mpi")
    out_dir = os.path.join(slurm_cluster.root, "mpi")
    os.makedirs(out_dir, exist_ok=True)
    os.chmod(out_dir, 0o777)
    program = os.path.join(out_dir, "ranks.py")
    with open(program, "w") as fh:
        fh.write("import os\nfrom mpi4py import MPI\nc = MPI.COMM_WORLD\n"
                 "print('RANK', c.rank, c.size, os.environ.get('SLURM_CPUS_PER_TASK'), c.allreduce(c.rank))\n")
    line = mpi_command_line("HpcnasSrunCommand", [slurm_cluster.hostname], app_cmd=f"{sys.executable} {program}",
                            ranks_per_node=2, threads_per_rank=1, srun_mpi="pmi2")
    script = os.path.join(out_dir, "job.sh")
    with open(script, "w") as fh:
        fh.write(f"#!/bin/bash\n{line}\n")
    job_id = slurm_cluster.run(["sbatch", "--parsable", "--exclusive", "-o", f"{out_dir}/%j.out", script],
                               user="nobody", cwd=out_dir).stdout.strip().split(";")[0]
    assert slurm_cluster.wait_job(job_id, timeout=90) == "COMPLETED"
    ranks = sorted(l.split() for l in open(os.path.join(out_dir, f"{job_id}.out")) if l.startswith("RANK"))
    assert ranks == [["RANK", "0", "2", "None", "1"], ["RANK", "1", "2", "None", "1"]]


def _wait_search(env, wf: str, cluster, sched_id: str, timeout: float) -> str:
    deadline = time.time() + timeout
    state = None
    while time.time() < deadline:
        rows = env.query(f"list(BalsamJob.objects.filter(workflow={wf!r}, name='search').values_list('state', flat=True))")
        state = rows[0] if rows else None
        if state in ("JOB_FINISHED", "FAILED", "USER_KILLED"):
            return state
        slurm_state = cluster.job_state(sched_id)
        if slurm_state not in ("PENDING", "RUNNING", "CONFIGURING"):
            raise AssertionError(f"Slurm job {sched_id} ended ({slurm_state}) while the search was {state}")
        time.sleep(3)
    raise AssertionError(f"search not finished after {timeout}s (state {state}, Slurm {cluster.job_state(sched_id)})")


def test_balsam_submit_runs_search_inside_slurm_allocation(balsam_env, balsam_workflow, slurm_cluster):  # noqa: F811
    env, wf, cluster = balsam_env, balsam_workflow, slurm_cluster
    # a HOME of its own: the session's ~/.balsam keeps the local site for the other tests
    home = os.path.join(env.base, "slurm-home")
    os.makedirs(home, exist_ok=True)
    if env.user:
        info = pwd.getpwnam(env.user)
        os.chown(home, info.pw_uid, info.pw_gid)
    extra = {"HOME": home, "SLURM_CONF": cluster.conf}

    setup = env.hpcnas("balsam-setup", "--machine", "slurm", **extra)
    assert "MPI_RUN_TEMPLATE=HpcnasSrunCommand" in setup.stdout
    assert os.path.isfile(os.path.join(home, ".balsam", "job-templates", "hpcnas-slurm.tmpl"))

    started = time.time()
    submit = env.hpcnas(
        "balsam-submit", "hps", "ambs", "-w", wf, "-n", "1", "-t", "10", "-q", cluster.partition,
        "--job-mode", "serial", "--problem", "hpcnas.benchmark.polynome2.Problem",
        "--run", "hpcnas.benchmark.polynome2.run", "--num-evals-per-node", "4",
        "--max-evals", str(MAX_EVALS), "--seed", "5", "--no-progress", **extra,
    )
    assert "-> 3 worker(s)" in submit.stdout, submit.stdout
    assert "Submit OK" in submit.stdout, submit.stdout + submit.stderr
    launches = env.query(f"[(q.scheduler_id, q.command) for q in db.models.QueuedLaunch.objects.filter(wf_filter={wf!r})]")
    assert len(launches) == 1, launches
    sched_id, script_path = str(launches[0][0]), launches[0][1]
    assert cluster.job_state(sched_id) in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETED")

    try:
        state = _wait_search(env, wf, cluster, sched_id, timeout=240)
        elapsed = time.time() - started
    finally:
        slurm_final = cluster.job_state(sched_id)
        cluster.run(["scancel", sched_id], check=False)
    search_dir = glob.glob(os.path.join(env.db_path, "data", wf, "search_*"))
    out = open(os.path.join(search_dir[0], "search.out")).read() if search_dir else ""
    assert state == "JOB_FINISHED", out[-3000:]
    # the launcher ran inside the Slurm allocation: Slurm detection, the ensemble under srun
    script = open(script_path).read()
    launcher_logs = "".join(open(p).read() for p in glob.glob(os.path.join(env.db_path, "log", "launcher_*.log")))
    assert f"#SBATCH --partition={cluster.partition}" in script and "-m hpcnas.balsam.launch" in script, script
    assert "Built 1 SLURM workers" in launcher_logs
    # hpcnas's launcher entry moved the ensemble master off Balsam's fixed port 19876
    port = re.search(r"hpcnas: serial ensemble master on \S+:(\d+)", launcher_logs)
    assert port and port.group(1) != "19876", launcher_logs[-2000:]
    assert re.search(r"srun --nodes 1 --nodelist \S+ -n 1 --ntasks-per-node 1 --export=ALL .*-m hpcnas\.balsam\.ensemble",
                     launcher_logs), launcher_logs[-3000:]
    # the allocation was still alive when the search finished (the ensemble quits seconds after
    # the workflow's last job, not at once)
    assert slurm_final in ("RUNNING", "COMPLETING", "COMPLETED"), slurm_final

    evals = env.query(
        f"list(BalsamJob.objects.filter(workflow={wf!r}).exclude(name='search').values_list('state', flat=True))")
    assert len(evals) == MAX_EVALS and set(evals) == {"JOB_FINISHED"}, evals
    results = pd.read_csv(os.path.join(search_dir[0], "results.csv"))
    assert len(results) == MAX_EVALS and (results["status"] == "DONE").all()
    assert results["objective"].max() <= 0.0
    print(f"slurm e2e: {MAX_EVALS} evaluations through sbatch + Balsam launcher in {elapsed:.1f} s")


def test_balsam_submit_rejected_by_sbatch_leaves_no_search_job(balsam_env, balsam_workflow, slurm_cluster):  # noqa: F811
    """sbatch refuses the job (unknown partition): one-line error, exit 2, nothing left in the DB."""
    env, wf, cluster = balsam_env, balsam_workflow, slurm_cluster
    home = os.path.join(env.base, "slurm-home-2")
    os.makedirs(home, exist_ok=True)
    if env.user:
        info = pwd.getpwnam(env.user)
        os.chown(home, info.pw_uid, info.pw_gid)
    extra = {"HOME": home, "SLURM_CONF": cluster.conf}
    env.hpcnas("balsam-setup", "--machine", "slurm", **extra)
    proc = env.hpcnas(
        "balsam-submit", "hps", "random", "-w", wf, "-n", "1", "-t", "5", "-q", "nosuchpartition",
        "--job-mode", "serial", "--problem", "hpcnas.benchmark.polynome2.Problem",
        "--run", "hpcnas.benchmark.polynome2.run", "--num-evals-per-node", "2", check=False, **extra,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith("hpcnas: error:")]
    assert len(errors) == 1 and "balsam submit-launch failed" in errors[0], proc.stderr
    assert "partition" in errors[0].lower(), errors[0]
    assert env.query(f"BalsamJob.objects.filter(workflow={wf!r}).count()") == 0


@pytest.mark.parametrize("machine, template", [("theta", "theta.cobalt.tmpl"), ("thetagpu", "thetagpu.cobalt.tmpl")])
def test_cobalt_sites_through_real_submit_launch(balsam_env, balsam_workflow, machine, template):
    """Balsam's own submit-launch renders the Theta/ThetaGPU templates (its jinja, its context)
    exactly as hpcnas.balsam.render does, and hands them to the Cobalt submit command (a
    recording stand-in for qsub, named by SCHEDULER_SUBMIT_EXE as a user would edit it)."""
    import json
    import sys

    from hpcnas.balsam.render import LaunchRequest, render_job_script

    env, wf = balsam_env, balsam_workflow
    home = os.path.join(env.base, f"{machine}-home")
    os.makedirs(home, exist_ok=True)
    fake_qsub = os.path.join(home, "qsub")
    with open(fake_qsub, "w") as fh:
        fh.write('#!/bin/sh\necho "$@" > "$HOME/qsub.args"\necho 424242\n')
    os.chmod(fake_qsub, 0o755)
    if env.user:
        info = pwd.getpwnam(env.user)
        for path in (home, fake_qsub):
            os.chown(path, info.pw_uid, info.pw_gid)
    env.hpcnas("balsam-setup", "--machine", machine, HOME=home)
    settings_path = os.path.join(home, ".balsam", "settings.json")
    values = json.load(open(settings_path))
    values["SCHEDULER_SUBMIT_EXE"] = fake_qsub
    with open(settings_path, "w") as fh:
        json.dump(values, fh)

    proc = env.hpcnas(
        "balsam-submit", "hps", "ambs", "-w", wf, "-n", "3", "-t", "45", "-q", "debug-cache-quad", "-A", "myproj",
        "--job-mode", "mpi", "--problem", "hpcnas.benchmark.polynome2.Problem",
        "--run", "hpcnas.benchmark.polynome2.run", "--max-evals", "5", HOME=home,
    )
    assert "Submit OK" in proc.stdout and "424242" in proc.stdout, proc.stdout + proc.stderr
    launch = env.query(f"[(q.scheduler_id, q.command) for q in db.models.QueuedLaunch.objects.filter(wf_filter={wf!r})]")
    assert launch[0][0] == 424242
    script_path = launch[0][1]
    qsub_args = open(os.path.join(home, "qsub.args")).read().split()
    assert qsub_args[0] == "--cwd" and qsub_args[-1] == script_path and "-O" in qsub_args

    expected = render_job_script(
        template,
        LaunchRequest(nodes=3, time_minutes=45, queue="debug-cache-quad", job_mode="mpi", project="myproj",
                      wf_filter=wf),
        balsam_bin=os.path.dirname(sys.executable),  # the owner's PATH starts with this venv
        balsam_db_path=env.db_path, pg_bin=_pg_bin_of(script_path),
    )
    assert open(script_path).read() == expected


def _pg_bin_of(script_path: str) -> str:
    """The Postgres folder Balsam found on the DB owner's PATH (second entry of the PATH line)."""
    line = next(l for l in open(script_path) if l.startswith("export PATH="))
    return line[len("export PATH="):].split(":")[1]
