"""Issue 18: a node of the allocation dies mid-search (virtual cluster, Balsam serial mode).

``hpcnas balsam-submit`` runs a search over the 4 nodes (``--sched-flags=--no-kill``: Slurm keeps
the allocation when a node fails, as a user asks for when a search must outlive one node). Once
evaluations run on ``vnode4``, every process of that node's namespace is SIGKILLed (its slurmd,
the ensemble worker, the evaluations). The search must still reach max-evals: the evaluations of
the dead node come back FAILED or run again elsewhere; none is lost, none counted twice.
"""
from __future__ import annotations

import glob
import os
import time

import pandas as pd
import pytest

from tests.support.vcluster_balsam import (
    eval_reports,
    launcher_logs,
    site_home,
    tail,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.balsam, pytest.mark.slurm]

MAX_EVALS = 24


def _processes(node, marker: bytes) -> list[int]:
    pids = []
    for pid in node.pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if marker in fh.read():
                    pids.append(pid)
        except OSError:
            continue
    return pids


def _victim(cluster):
    """A node running evaluations, but neither the launcher (first node) nor the search master
    (a Balsam job too, on any node): what dies is a node of evaluations."""
    for node in cluster.nodes[1:]:
        if _processes(node, b"hpcnas.balsam.job_runner") and not _processes(node, b"--evaluator"):
            return node
    return None


def test_a_dead_node_loses_no_evaluation(vcluster_balsam, virtual_cluster, balsam_workflow):
    env, cluster, wf = vcluster_balsam, virtual_cluster, balsam_workflow
    home = site_home(env, cluster, f"home-{wf}")
    submit = env.hpcnas(
        "balsam-submit", "hps", "random", "-w", wf, "-n", str(len(cluster.nodes)), "-t", "8",
        "-q", cluster.partition, "--sched-flags=--no-kill", "--job-mode", "serial",
        "--problem", "tests.support.balsam_problems.Problem", "--run", "tests.support.balsam_problems.host_sleep",
        "--num-evals-per-node", "2", "--max-evals", str(MAX_EVALS), "--seed", "13", "--no-progress",
        HOME=home, SLURM_CONF=cluster.conf, HPCNAS_TEST_SLEEP="4",
    )
    assert "Submit OK" in submit.stdout, submit.stdout + submit.stderr
    job = str(env.query(f"[q.scheduler_id for q in db.models.QueuedLaunch.objects.filter(wf_filter={wf!r})]")[0])
    try:
        victim = wait_until(lambda: _victim(cluster), 180, "evaluations on a node without the search", poll=0.5)
        running = _processes(victim, b"hpcnas.balsam.job_runner")
        killed_at = time.time()
        killed = cluster.kill_node(victim.name)
        print(f"node failure: killed {len(killed)} processes of {victim.name} ({len(running)} evaluations)")
        final = cluster.wait_job(job, timeout=300, poll=2)
    finally:
        cluster.run(["scancel", job], check=False)
        for node in cluster.nodes:  # the session's cluster serves later tests
            if cluster.node_states().get(node.name) != "idle" and not node.pids():
                cluster.revive_node(node.name)
    search_dir = (glob.glob(os.path.join(env.db_path, "data", wf, "search_*")) or [""])[0]
    assert final == "COMPLETED", final + tail(os.path.join(search_dir, "search.out")) + launcher_logs(env, chars=3000)

    rows = eval_reports(env, wf)
    results = pd.read_csv(os.path.join(search_dir, "results.csv"))
    names = [f"eval-{j}" for j in results["job_id"]]
    lost = sorted({r["name"] for r in rows} - set(names))
    duplicated = len(names) - len(set(names))
    retried = sum(r["state_history"].count(" RUNNING]") > 1 for r in rows)
    failed = results[results["status"] != "DONE"]
    hosts = results["m:host"].dropna().value_counts().to_dict()
    print(f"node failure: {len(results)} results, {len(failed)} failed, lost {len(lost)}, duplicated {duplicated}, "
          f"retried {retried}; done per node {hosts}; search ended {time.time() - killed_at:.0f} s after the kill")
    assert len(results) == MAX_EVALS, ([(r["name"], r["state"], r["state_history"][-400:]) for r in rows
                                        if r["name"] in lost], tail(os.path.join(search_dir, "search.out"), 1500),
                                       tail(os.path.join(home, "launcher.log"), 10))
    assert not lost and duplicated == 0
    assert set(hosts) >= {n.name for n in cluster.nodes if n is not victim}  # the others went on
    # what ran on the dead node came back FAILED, saying so (or ran again elsewhere): none left running
    assert {r["state"] for r in rows} <= {"JOB_FINISHED", "FAILED"}, [r["state"] for r in rows]
    assert 1 <= len(failed) + retried <= len(running) + 2, failed[["job_id", "error"]].to_string()
    assert all(victim.name in str(e) and "node lost" in str(e) for e in failed["error"]), failed["error"].tolist()
