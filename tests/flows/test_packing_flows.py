"""Flows: the DeepHyper guide's node-packing recipe, on the real ``balsam launcher`` (serial mode).

``balsam job --name test --application AMBS --workflow TEST --node-packing-count=4
--env DEEPHYPER_WORKERS_PER_NODE=4 --args '--evaluator balsam --problem P --run R'``: node 1
holds the search + 3 evaluations (other nodes 4), as DeepHyper documented; the ``--n-jobs=2``
variant with ``--node-packing-count=2`` leaves 2 on the search's node. A search job that
cannot run says why, in one line, in the ``state_history`` that ``balsam ls`` shows.
"""
from __future__ import annotations

import glob
import os

import pandas as pd
import pytest

from tests.flows.conftest import transcript
from tests.support.balsam_env import wait_for_state

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

ARGS = ("--evaluator balsam --problem tests.support.balsam_problems.Problem "
        "--run tests.support.balsam_problems.sleep_or_crash --max-evals {n} --seed 1 --no-progress")


def guide_flow(flows, wf: str, packing: int, env_var: str, extra: str = "", n: int = 6):
    """``balsam job ...`` then ``balsam launcher --wf-filter WF --job-mode serial`` until the search
    job ends (then the launcher is stopped, as the end of an allocation would), then ``balsam ls``."""
    job = flows.sh(
        f"balsam job --name test --application AMBS --workflow {wf} --node-packing-count={packing} "
        f"--env {env_var} --args '{ARGS.format(n=n)} {extra}' --yes >/dev/null\n"
    )
    assert job.returncode == 0, transcript(job)
    launcher = flows.env.start_launcher(wf, "serial", stock=True)  # balsam launcher, as the guide says
    try:
        wait_for_state(flows.env, f"workflow={wf!r}, name='test'", ("JOB_FINISHED", "FAILED"), launcher, 300)
    finally:
        flows.env.stop(launcher)
    return flows.sh(f"balsam ls --wf {wf} --name test --verbose\n")


def search_out(flows, wf: str) -> tuple[str, str]:
    folder = glob.glob(os.path.join(flows.db, "data", wf, "test_*"))
    assert folder, f"no job folder for {wf}"
    with open(os.path.join(folder[0], "test.out"), errors="replace") as fh:
        return folder[0], fh.read()


@pytest.mark.parametrize("packing, extra, on_first_node", [(4, "", 3), (2, "--n-jobs=2", 2)],
                         ids=["packing4", "packing2-n-jobs2"])
def test_deephyper_workers_per_node_recipe(flows, packing, extra, on_first_node):
    wf = f"TEST{packing}"
    proc = guide_flow(flows, wf, packing, "DEEPHYPER_WORKERS_PER_NODE=4", extra)
    folder, out = search_out(flows, wf)
    assert proc.returncode == 0, transcript(proc) + out[-2000:]
    assert f"leaving {on_first_node} on its node -> {on_first_node} worker(s)" in out, out[-2000:]
    assert "JOB_FINISHED" in proc.stdout, transcript(proc) + out[-2000:]
    results = pd.read_csv(os.path.join(folder, "results.csv"))
    assert len(results) == 6
    rows = flows.env.query(f"list(BalsamJob.objects.filter(workflow={wf!r}, name__startswith='eval-')"
                           ".values_list('node_packing_count', flat=True))")
    assert rows and set(rows) == {4}


def test_hpcnas_workers_per_node_and_a_failed_search_says_why(flows):
    wf = "TESTFAIL"
    # HPCNAS_WORKERS_PER_NODE=1 with a search job taking a whole node: no room, and it says so
    proc = guide_flow(flows, wf, 1, "HPCNAS_WORKERS_PER_NODE=1", n=2)
    _, out = search_out(flows, wf)
    assert "no room for evaluations" in out, out[-2000:]
    history = flows.env.query(f"BalsamJob.objects.get(workflow={wf!r}, name='test').state_history")
    lines = [l for l in history.splitlines() if "no room for evaluations" in l]
    assert lines, history
    assert "FAILED" in proc.stdout, transcript(proc)
    assert "Traceback" not in history, history
