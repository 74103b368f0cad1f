"""Issue 18: Balsam on a virtual 4-node Slurm cluster (:mod:`tests.support.virtual_cluster`).

* the cluster itself: 4 distinct host names, an MPI program over 2 nodes (srun's PMI-2);
* MPI mode in a 4-node allocation: evaluations of ``num_nodes=2`` whose ranks run on two
  hosts, two of them at once on disjoint nodes (the search master runs outside the allocation,
  on the "login node", as ``hpcnas hps ... --evaluator balsam --num-workers 2``);
* serial mode over 3 nodes with packing 4 through ``hpcnas balsam-submit``: evaluations on
  every node and ``hpcnas-analytics utilization`` matching the placement the runs reported.

One cluster and one DB (``vcluster_balsam``) for the whole session.
"""
from __future__ import annotations

import glob
import importlib.util
import itertools
import json
import os

import pandas as pd
import pytest

from tests.support.components import require
from tests.support.vcluster_balsam import (
    eval_reports,
    intervals_overlap,
    launcher_logs,
    site_home,
    submit_launcher,
    tail,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.balsam, pytest.mark.slurm]


def test_virtual_cluster_has_distinct_hosts_and_runs_mpi_across_nodes(virtual_cluster):
    cluster = virtual_cluster
    require("mpi4py", importlib.util.find_spec("mpi4py") is not None, "pip install 'hpcnas[mpi]'")
    import sys

    out_dir = os.path.join(cluster.root, "smoke")
    os.makedirs(out_dir, exist_ok=True)
    os.chmod(out_dir, 0o777)
    program = os.path.join(out_dir, "hosts.py")
    with open(program, "w") as fh:
        fh.write("import socket\nfrom mpi4py import MPI\nc = MPI.COMM_WORLD\n"
                 "print('RANK', c.rank, c.size, ','.join(c.allgather(socket.gethostname())))\n")
    job = cluster.run(
        ["sbatch", "--parsable", "-N", str(len(cluster.nodes)), "-o", f"{out_dir}/%j.out", "--wrap",
         f"srun -N {len(cluster.nodes)} --ntasks-per-node 1 hostname | sort | sed 's/^/HOST /'; "
         f"srun -N 2 -n 2 --ntasks-per-node 1 --mpi=pmi2 {sys.executable} {program}"],
        user="nobody", cwd=out_dir,
    ).stdout.strip().split(";")[0]
    assert cluster.wait_job(job, timeout=90) == "COMPLETED", tail(f"{out_dir}/{job}.out")
    lines = open(f"{out_dir}/{job}.out").read().splitlines()
    assert [l.split()[1] for l in lines if l.startswith("HOST ")] == cluster.node_names
    ranks = sorted(l.split()[1:] for l in lines if l.startswith("RANK "))
    assert ranks == [["0", "2", "vnode1,vnode2"], ["1", "2", "vnode1,vnode2"]], lines
    # the nodes reach the root namespace (DB host) over the bridge only: no default route
    node = cluster.nodes[0]
    routes = os.popen(f"ip netns exec {node.netns} ip route").read()
    assert "default" not in routes and str(cluster.subnet) in routes, routes


@pytest.mark.mpi
def test_mpi_mode_two_node_evaluations_side_by_side_in_a_4_node_allocation(vcluster_balsam, virtual_cluster,
                                                                            balsam_workflow):
    require("mpi4py", importlib.util.find_spec("mpi4py") is not None, "pip install 'hpcnas[mpi]'")
    env, cluster, wf = vcluster_balsam, virtual_cluster, balsam_workflow
    home = site_home(env, cluster, f"home-{wf}", HPCNAS_SRUN_MPI="pmi2")
    out_dir = os.path.join(home, "search")
    max_evals = 4
    master = env.popen(
        [sys_python(), "-m", "hpcnas.cli.main", "hps", "random", "--evaluator", "balsam", "--workflow", wf,
         "--num-workers", "2", "--num-nodes-per-eval", "2", "--num-ranks-per-node", "1",
         "--problem", "tests.support.balsam_problems.Problem", "--run", "tests.support.balsam_problems.mpi_hosts",
         "--max-evals", str(max_evals), "--seed", "5", "--no-progress", "--output-dir", out_dir, "--timeout", "240"],
        os.path.join(home, "master.log"), HOME=home, HPCNAS_TEST_SLEEP="4",
    )
    job = None
    try:
        # the launcher leaves once its workflow has nothing left: submit it when there is work
        wait_until(lambda: master.poll() is not None or env.query(
            f"BalsamJob.objects.filter(workflow={wf!r}).count()"), 120, "the first evaluation")
        job = submit_launcher(env, cluster, home, wf, nodes=4, job_mode="mpi")
        master.wait(timeout=300)
    finally:
        env.stop(master)
        final = cluster.wait_job(job, timeout=60) if job else "NOT SUBMITTED"
        if job and final in ("RUNNING", "PENDING"):
            cluster.run(["scancel", job], check=False)
    job_out = tail(os.path.join(home, f"launch-{wf}-{job}.out"))
    assert master.returncode == 0, tail(os.path.join(home, "master.log")) + job_out + launcher_logs(env, chars=3000)
    assert final == "COMPLETED", job_out
    assert "Built 4 SLURM workers" in launcher_logs(env, wf)

    rows = eval_reports(env, wf)
    assert len(rows) == max_evals and {r["state"] for r in rows} == {"JOB_FINISHED"}, rows
    placements = []
    for row in rows:
        meta = row["report"]["metadata"]
        hosts = meta["hosts"].split(",")
        assert row["num_nodes"] == 2 and meta["size"] == 2, row
        assert len(set(hosts)) == 2 and set(hosts) <= set(cluster.node_names), hosts
        placements.append({"hosts": set(hosts), "start": meta["start"], "end": meta["end"]})
    print("mpi mode, hosts per evaluation:", [sorted(p["hosts"]) for p in placements])
    together = [(a, b) for a, b in itertools.combinations(placements, 2) if intervals_overlap(a, b)]
    assert together, "no two evaluations ran at the same time"
    assert all(not (a["hosts"] & b["hosts"]) for a, b in together), together  # disjoint nodes
    results = pd.read_csv(os.path.join(out_dir, "results.csv"))
    assert len(results) == max_evals and (results["status"] == "DONE").all()


def sys_python() -> str:
    import sys

    return sys.executable


def test_serial_mode_packs_four_per_node_on_three_nodes(vcluster_balsam, virtual_cluster, balsam_workflow):
    env, cluster, wf = vcluster_balsam, virtual_cluster, balsam_workflow
    home = site_home(env, cluster, f"home-{wf}")
    max_evals = 24
    submit = env.hpcnas(
        "balsam-submit", "hps", "random", "-w", wf, "-n", "3", "-t", "8", "-q", cluster.partition,
        "--job-mode", "serial", "--problem", "tests.support.balsam_problems.Problem",
        "--run", "tests.support.balsam_problems.host_sleep", "--num-evals-per-node", "4",
        "--max-evals", str(max_evals), "--seed", "11", "--no-progress",
        HOME=home, SLURM_CONF=cluster.conf, HPCNAS_TEST_SLEEP="3",
    )
    assert "Submit OK" in submit.stdout, submit.stdout + submit.stderr
    job = str(env.query(f"[q.scheduler_id for q in db.models.QueuedLaunch.objects.filter(wf_filter={wf!r})]")[0])
    final = cluster.wait_job(job, timeout=300, poll=2)
    search_dir = (glob.glob(os.path.join(env.db_path, "data", wf, "search_*")) or [""])[0]
    assert final == "COMPLETED", tail(os.path.join(search_dir, "search.out")) + launcher_logs(env, chars=3000)

    rows = eval_reports(env, wf)
    done = [r for r in rows if r["state"] == "JOB_FINISHED"]
    assert len(rows) == max_evals and len(done) == max_evals, [r["state"] for r in rows]
    results = pd.read_csv(os.path.join(search_dir, "results.csv"))
    assert len(results) == max_evals and (results["status"] == "DONE").all(), (
        results[["status", "error", "m:host"]].to_string() + _outs_without_report(env, wf))
    assert sorted(f"eval-{j}" for j in results["job_id"]) == sorted(r["name"] for r in rows)  # a row per job
    per_node = results["m:host"].value_counts().sort_index().to_dict()
    print("serial mode, evaluations per node:", per_node,
          f"({sum(bool(r['report']) for r in rows)} of {len(rows)} reports in the DB, the rest from .out files)")
    assert set(per_node) == {"vnode1", "vnode2", "vnode3"}, per_node
    # packing 4: at some moment a node ran 4 evaluations at once, never more
    spans = list(zip(results["m:host"], results["m:start"], results["m:end"]))
    peak = max(sum(1 for h2, s2, e2 in spans if h2 == h and s2 <= s < e2) for h, s, _e in spans)
    assert peak == 4, peak

    out = os.path.join(home, "util")
    env.run([sys_python(), "-m", "hpcnas.analytics.cli", "utilization", "--workflow", wf, "-o", out], HOME=home)
    util = json.load(open(os.path.join(out, "utilization.json")))
    print("serial mode utilization:", {k: util.get(k) for k in (
        "nodes", "nodes_source", "utilization_percent", "busy_node_seconds", "wall_seconds", "peak_busy_nodes")})
    # the allocation is the 3 nodes the evaluations were seen on
    assert util["nodes"] == len(per_node) == 3, util
    assert util["peak_busy_nodes"] <= 3.01 and util["overcommit_seconds"] < 0.5, util
    # busy node-seconds = what the placement implies: each run holds 1/packing of its node from
    # RUNNING to RUN_DONE (Balsam's record), the search job its own share
    jobs = env.query(f"list(BalsamJob.objects.filter(workflow={wf!r}).values('name', 'node_packing_count', "
                     "'state_history'))")
    expected = sum(_run_seconds(j["state_history"]) / j["node_packing_count"] for j in jobs)
    inside = sum(e - s for _h, s, e in spans) / 4  # the run functions' own time, a lower bound
    print(f"serial mode: busy node-s {util['busy_node_seconds']:.1f}, from the placement {expected:.1f}, "
          f"run functions alone {inside:.1f}")
    assert abs(util["busy_node_seconds"] - expected) <= 0.05 * expected, (expected, util)
    assert inside <= util["busy_node_seconds"] <= util["available_node_seconds"]


def _run_seconds(history: str) -> float:
    """Seconds between each RUNNING and the next end of run in a Balsam ``state_history``."""
    import datetime
    import re

    total, started = 0.0, None
    for stamp, state in re.findall(r"\[(\d\d-\d\d-\d{4} [\d:.]+) (\w+)\]", history):
        when = datetime.datetime.strptime(stamp, "%m-%d-%Y %H:%M:%S.%f").timestamp()
        if state == "RUNNING":
            started = when
        elif started is not None and state in ("RUN_DONE", "RUN_ERROR", "RUN_TIMEOUT", "USER_KILLED", "FAILED"):
            total += when - started
            started = None
    return total


def _outs_without_report(env, wf: str) -> str:
    """The .out files of a workflow's evaluations that hold no report (failure messages)."""
    from hpcnas.balsam.jobs import MARKER

    texts = [tail(p, 1500) for p in glob.glob(os.path.join(env.db_path, "data", wf, "*", "*.out"))]
    bad = [t for t in texts if MARKER not in t]
    logs = glob.glob(os.path.join(env.db_path, "log", "*vnode2*"))
    return (f"\n{len(bad)} .out file(s) without a report, e.g.:\n" + "\n---\n".join(bad[:2])
            + "".join(f"\n--- {p}\n{tail(p, 3000)}" for p in logs))


def test_balsam_submit_refuses_a_db_the_nodes_cannot_reach(balsam_env, virtual_cluster, balsam_workflow):
    """The session DB is hardened for this host only: the virtual nodes cannot connect, so
    balsam-submit says so (and how to open it) before creating or submitting anything."""
    env, cluster, wf = balsam_env, virtual_cluster, balsam_workflow
    home = site_home(env, cluster, f"home-{wf}")
    proc = env.hpcnas(
        "balsam-submit", "hps", "random", "-w", wf, "-n", "2", "-t", "5", "-q", cluster.partition,
        "--job-mode", "serial", "--problem", "tests.support.balsam_problems.Problem",
        "--run", "tests.support.balsam_problems.host_sleep", check=False, HOME=home, SLURM_CONF=cluster.conf,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hpcnas: error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stdout + proc.stderr
    assert "cannot reach it" in errors[0] and f"--allow {cluster.subnet}" in errors[0], errors[0]
    assert env.query(f"BalsamJob.objects.filter(workflow={wf!r}).count()") == 0
    assert cluster.run(["squeue", "-h", "-o", "%i"]).stdout.strip() == ""
