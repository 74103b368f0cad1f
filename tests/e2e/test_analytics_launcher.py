"""Analytics of a real search run by the real Balsam launcher (serial mode, packing 2).

The timelines come from the state_history Balsam itself wrote; the node count from the
launcher's own log; the objectives from the search's results.csv. The figures are checked
against what the search did (counts, packing, the crash) and against each other.
"""
from __future__ import annotations

import glob
import json
import os

import pandas as pd
import pytest

from hpcnas.analytics.cli import main
from tests.support.balsam_env import search_args, wait_for_state

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

MAX_EVALS = 8


def test_analytics_of_a_real_launcher_run(balsam_env, balsam_workflow, tmp_path):
    env, wf = balsam_env, balsam_workflow
    env.balsam("job", "--name", "search", "--workflow", wf, "--application", "AMBS",
               "--node-packing-count", "1000", "--args", search_args(MAX_EVALS, "sleep_or_crash"),
               "--yes")
    launcher = env.start_launcher(wf, "serial")
    try:
        state = wait_for_state(env, f"workflow={wf!r}, name='search'", ("JOB_FINISHED", "FAILED"),
                               launcher, 420)
    finally:
        env.stop(launcher)
    assert state == "JOB_FINISHED"
    search_dir = glob.glob(os.path.join(env.db_path, "data", wf, "search_*"))[0]

    out = tmp_path / "report"
    assert main(["report", search_dir, "--db", env.db_path, "--workflow", wf, "-o", str(out)]) == 0
    util = json.loads((out / "utilization.json").read_text())
    # the launcher logged "Built 1 DEFAULT workers": one node on this machine
    assert util["nodes_source"].startswith("launcher logs") and util["nodes"] == 1
    assert util["num_runs"] == MAX_EVALS + 1  # the evaluations and the search job itself
    # two evaluations of 1/2 node plus the master's 1/1000 (Balsam fills a node up to 1.001);
    # Balsam's serial mode writes the RUN_ERROR of a crash after the RUNNING of its successor
    # (same status batch), so a third evaluation may overlap briefly, never a fourth
    assert 1.001 - 1e-9 <= util["peak_busy_nodes"] <= 1.501 + 1e-9
    assert util["overcommit_seconds"] < 0.1 * util["wall_seconds"]
    assert 10 < util["utilization_percent"] <= 100.1
    # over the launcher's whole life: one launcher, from its first log line to its last, which
    # holds the first-start-to-last-end window and its start-up and idle tail besides
    life = util["lifetime"]
    assert life["launchers"] == 1 and life["between_launches_seconds"] == 0
    assert life["seconds"] >= util["wall_seconds"] - 2  # log stamps are whole seconds
    assert life["idle_node_seconds"]["launcher start-up"] > 0
    assert life["utilization_percent"] <= util["utilization_percent"] + 2
    curve = pd.read_csv(out / "utilization.csv")
    assert curve["running_jobs"].max() >= 3  # master + 2 packed evaluations overlapped

    tp = json.loads((out / "throughput.json").read_text())
    assert tp["totals"]["error"] == 1  # the crashing configuration: RUN_ERROR
    assert tp["totals"]["done"] == MAX_EVALS - 1 + 1  # + the search job's RUN_DONE

    search = json.loads((out / "search_summary.json").read_text())
    assert search["num_evaluations"] == MAX_EVALS and search["num_failed"] == 1
    results = pd.read_csv(os.path.join(search_dir, "results.csv"))
    assert search["best_objective"] == pytest.approx(results["objective"].max())
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5  # search curve, parallel coordinates, objective vs parameter, utilization, throughput

    # from the DB alone: the search job's results.csv in its Balsam working directory is found
    out2 = tmp_path / "top"
    assert main(["topk", "--db", env.db_path, "--workflow", wf, "-k", "3", "-o", str(out2)]) == 0
    top = pd.read_csv(out2 / "topk.csv")
    assert top["objective"].tolist() == sorted(results["objective"].dropna(), reverse=True)[:3]
