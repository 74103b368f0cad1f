"""Flows: a DeepHyper user's old ``results.csv`` files, read by hpcnas.

* ``hpcnas-analytics topk`` / ``search`` on a DeepHyper 0.2 file (bare hyper-parameter
  columns, ``objective``, ``elapsed_sec``) and a 0.13 file (``p:`` columns, ``job_id``,
  ``m:timestamp_*``, ``F_reason`` failures);
* ``hpcnas hps ambs ... --warm-start results.csv``: the old evaluations are told first and
  not run again.
"""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from tests.flows.conftest import transcript

pytestmark = [pytest.mark.e2e]

OLD_02 = "x,objective,elapsed_sec\n-1.5,-2.25,3.1\n0.5,-0.25,4.0\n2.0,-4.0,5.2\n"
OLD_013 = ("p:x,objective,job_id,m:timestamp_submit,m:timestamp_gather\n"
           "-1.5,-2.25,0,0.1,1.2\n0.5,-0.25,1,0.1,1.9\n3.0,F_diverged,2,1.2,2.5\n2.0,-4.0,3,1.9,3.3\n")
PROBLEM = ("from hpcnas.problem import HpProblem\nProblem = HpProblem()\n"
           "Problem.add_hyperparameter((-10.0, 10.0), 'x')\n\n"
           "def run(config):\n    return -config['x'] ** 2\n")


def write(flows, folder: str) -> None:
    proc = flows.sh(f"mkdir -p {folder} && cd {folder}\n"
                    f"printf '%s' '{OLD_02}' > old02.csv\nprintf '%s' '{OLD_013}' > old013.csv\n"
                    f"cat > quad.py <<'EOF'\n{PROBLEM}EOF\n", activate=False)
    assert proc.returncode == 0, transcript(proc)


@pytest.mark.parametrize("name, failed", [("old02.csv", 0), ("old013.csv", 1)])
def test_analytics_reads_old_deephyper_results(flows, name, failed):
    write(flows, "oldres")
    proc = flows.sh(f"cd oldres\nhpcnas-analytics topk {name} -k 2 -o an-{name}\n"
                    f"hpcnas-analytics search {name} -o an-{name}\n", activate=False, timeout=180)
    assert proc.returncode == 0, transcript(proc)
    top = pd.read_csv(os.path.join(flows.env.home, "oldres", f"an-{name}", "topk.csv"))
    assert top["x"].tolist() == [0.5, -1.5] and top["objective"].tolist() == [-0.25, -2.25]
    assert "Traceback" not in proc.stderr


def test_warm_start_from_an_old_deephyper_results_csv(flows):
    write(flows, "warm")
    proc = flows.sh("cd warm\nhpcnas hps ambs -p quad.py -r quad.py:run --warm-start old013.csv "
                    "--max-evals 5 --num-workers 1 --seed 4 --no-progress --output-dir out\n",
                    activate=False, timeout=180)
    assert proc.returncode == 0, transcript(proc)
    assert "warm start from old013.csv: 4 evaluation(s) told first, not re-run" in proc.stdout, transcript(proc)
    results = pd.read_csv(os.path.join(flows.env.home, "warm", "out", "results.csv"))
    assert len(results) == 5  # its own evaluations; the old ones are not rows of the new file
    assert not set(results["p:x"]) & {-1.5, 0.5, 3.0, 2.0}
    with open(os.path.join(flows.env.home, "warm", "out", "search.json")) as fh:
        assert json.load(fh)["max_evals"] == 5
