"""Flows: the DeepHyper guide's node-packing recipe, on the real Balsam launcher (serial mode).

``balsam job --name test --application AMBS --workflow TEST --node-packing-count=4
--env DEEPHYPER_WORKERS_PER_NODE=4 --args '--evaluator balsam --problem P --run R'``: node 1
holds the search + 3 evaluations (other nodes 4), as DeepHyper documented; the ``--n-jobs=2``
variant with ``--node-packing-count=2`` leaves 2 on the search's node. A search job that
cannot run says why, in one line, in the ``state_history`` that ``balsam ls`` shows.

The three workflows run at once, each under its own launcher (a workstation is one node per
launcher): the first under Balsam's own ``balsam launcher``, the others under
``python -m hpcnas.balsam.launch`` (the same launcher on a free ensemble port, so two serial
launchers on one host do not collide).
"""
from __future__ import annotations

import glob
import os
import signal

import pandas as pd
import pytest

from tests.flows.conftest import transcript
from tests.support.balsam_env import wait_for_state

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

ARGS = ("--evaluator balsam --problem tests.support.balsam_problems.Problem "
        "--run tests.support.balsam_problems.sleep_or_crash --max-evals {n} --seed 1 --no-progress")
#: workflow: (node-packing-count, --env, extra search options, max evals)
FLOWS = {
    "TEST4": (4, "DEEPHYPER_WORKERS_PER_NODE=4", "", 4),
    "TEST2": (2, "DEEPHYPER_WORKERS_PER_NODE=4", "--n-jobs=2", 4),
    "TESTFAIL": (1, "HPCNAS_WORKERS_PER_NODE=1", "", 2),
}


@pytest.fixture(scope="module")
def packed(flows):
    """Create the guide's search jobs, run one launcher per workflow until each job ends; then
    ``balsam ls`` of each: ``{workflow: CompletedProcess}``."""
    script = "".join(
        f"balsam job --name test --application AMBS --workflow {wf} --node-packing-count={packing} "
        f"--env {var} --args '{ARGS.format(n=n)} {extra}' --yes >/dev/null\n"
        for wf, (packing, var, extra, n) in FLOWS.items()
    )
    made = flows.sh(script)
    assert made.returncode == 0, transcript(made)
    launchers = {wf: flows.env.start_launcher(wf, "serial", stock=(i == 0)) for i, wf in enumerate(FLOWS)}
    try:
        for wf, launcher in launchers.items():
            wait_for_state(flows.env, f"workflow={wf!r}, name='test'", ("JOB_FINISHED", "FAILED"), launcher, 300)
    finally:
        for launcher in launchers.values():  # all at once: each stop waits for the session's processes
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGTERM)
        for launcher in launchers.values():
            flows.env.stop(launcher)
    return {wf: flows.sh(f"balsam ls --wf {wf} --name test --verbose\n") for wf in FLOWS}


def search_out(flows, wf: str) -> tuple[str, str]:
    folder = glob.glob(os.path.join(flows.db, "data", wf, "test_*"))
    assert folder, f"no job folder for {wf}"
    with open(os.path.join(folder[0], "test.out"), errors="replace") as fh:
        return folder[0], fh.read()


@pytest.mark.parametrize("wf, on_first_node", [("TEST4", 3), ("TEST2", 2)], ids=["packing4", "packing2-n-jobs2"])
def test_deephyper_workers_per_node_recipe(flows, packed, wf, on_first_node):
    proc = packed[wf]
    folder, out = search_out(flows, wf)
    assert proc.returncode == 0, transcript(proc) + out[-2000:]
    assert f"leaving {on_first_node} on its node -> {on_first_node} worker(s)" in out, out[-2000:]
    assert "JOB_FINISHED" in proc.stdout, transcript(proc) + out[-2000:]
    results = pd.read_csv(os.path.join(folder, "results.csv"))
    assert len(results) == FLOWS[wf][3]
    rows = flows.env.query(f"list(BalsamJob.objects.filter(workflow={wf!r}, name__startswith='eval-')"
                           ".values_list('node_packing_count', flat=True))")
    assert rows and set(rows) == {4}


def test_hpcnas_workers_per_node_and_a_failed_search_says_why(flows, packed):
    wf = "TESTFAIL"
    _, out = search_out(flows, wf)
    assert "no room for evaluations" in out, out[-2000:]
    history = flows.env.query(f"BalsamJob.objects.get(workflow={wf!r}, name='test').state_history")
    lines = [l for l in history.splitlines() if "no room for evaluations" in l]
    assert len(lines) == 1 and "RUN_ERROR" in lines[0], history
    assert "FAILED" in packed[wf].stdout, transcript(packed[wf])
    assert "Traceback" not in history, history
