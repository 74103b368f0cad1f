"""Flows: DeepHyper 0.2 / 0.13 command-line and problem-file habits, typed as DeepHyper users do.

A project folder with DeepHyper-style ``problem.py`` (``add_dim``, ``add_hyperparameter`` with
``default_value``, ``default_configuration``) and ``model_run.py`` (``run(job)`` reading
``job.parameters`` / ``job["x"]``, ``"F_reason"`` failures), run with
``hpcnas hps ambs -p problem.py -r model_run.py --evaluator subprocess --acq-func LCB
--eval-timeout-minutes 1``. Idioms hpcnas cannot honour fail in one line naming its spelling.
"""
from __future__ import annotations

import os

import pandas as pd
import pytest

from tests.flows.conftest import transcript
from tests.support.components import require_executable

pytestmark = [pytest.mark.e2e]

PROBLEM = '''
from hpcnas.problem import HpProblem

Problem = HpProblem()
Problem.add_dim("x", (-10.0, 10.0))                            # DeepHyper 0.2
Problem.add_hyperparameter((1, 8), "units", default_value=4)   # DeepHyper 0.13
Problem.add_starting_point(**Problem.default_configuration)
'''

MODEL_RUN = '''
def run(job):                      # DeepHyper 0.13: run(job)
    x = job.parameters["x"]
    units = job["units"]
    if units == 7:
        return "F_units_seven"     # DeepHyper's failure string
    return {"objective": -x ** 2 + units, "metadata": {"twice": 2 * units}}
'''


def project(flows, name: str) -> str:
    folder = os.path.join(flows.env.home, name)
    setup = flows.sh(f"mkdir -p {name}\ncat > {name}/problem.py <<'EOF'\n{PROBLEM}\nEOF\n"
                     f"cat > {name}/model_run.py <<'EOF'\n{MODEL_RUN}\nEOF\n", activate=False)
    assert setup.returncode == 0, transcript(setup)
    return folder


def test_deephyper_cli_habits_run_unchanged(flows):
    folder = project(flows, "dhproj")
    proc = flows.sh(
        "cd dhproj\n"
        "hpcnas hps ambs -p problem.py -r model_run.py --evaluator subprocess --acq-func LCB "
        "--eval-timeout-minutes 1 --max-evals 12 --num-workers 2 --seed 2 --no-progress --output-dir out\n",
        activate=False, timeout=240,
    )
    assert proc.returncode == 0, transcript(proc)
    notes = [l for l in proc.stderr.splitlines() if l.startswith("hpcnas: note:")]
    assert any("--acq-func UCB" in l for l in notes) and any("--evaluator local" in l for l in notes), proc.stderr
    assert "Traceback" not in proc.stderr
    results = pd.read_csv(os.path.join(folder, "out", "results.csv"))
    assert len(results) == 12
    start = results[(results["p:x"] == 0.0) & (results["p:units"] == 4)]  # Problem.default_configuration
    assert len(start) == 1 and start["objective"].iloc[0] == 4.0, results.head()
    failed = results[results["status"] == "FAILED"]
    assert all("F_units_seven" in e for e in failed["error"]), failed
    assert (results.loc[results["p:units"] == 7, "status"] == "FAILED").all()
    assert results.loc[results["status"] == "DONE", "objective"].notna().all()
    done = results[results["status"] == "DONE"]  # {"objective": ..., "metadata": {...}}: m: columns
    assert (done["m:twice"] == 2 * done["p:units"]).all()


def test_deephyper_mpicomm_search_runs_under_mpirun(flows):
    """DeepHyper 0.13's ``--evaluator mpicomm`` inside one MPI job: ``mpirun -n 3`` runs the
    search on rank 0 and the project's ``run(job)`` on ranks 1 and 2 (no Balsam DB involved)."""
    require_executable("mpirun")
    folder = project(flows, "dhmpi")
    proc = flows.sh("cd dhmpi\nmpirun -n 3 hpcnas hps ambs -p problem.py -r model_run.py --evaluator mpicomm "
                    "--max-evals 8 --seed 3 --no-progress --output-dir out\n", activate=False, timeout=240)
    assert proc.returncode == 0, transcript(proc)
    notes = [line for line in proc.stderr.splitlines() if line.startswith("hpcnas: note:")]
    assert len(notes) == 1 and "--evaluator mpi" in notes[0], proc.stderr  # from rank 0 only
    results = pd.read_csv(os.path.join(folder, "out", "results.csv"))
    assert len(results) == 8 and set(results["worker"]) <= {"rank-1", "rank-2"}
    assert results.loc[results["p:units"] != 7, "status"].eq("DONE").all()


@pytest.mark.parametrize("argv, spelling", [
    ("--evaluator mpipool", "--evaluator mpi under mpirun -n N"),
    ("--acq-func gp_hedge", "--acq-func UCB"),
    ("--eval-timeout-minutes ten", "--eval-timeout SECONDS"),
])
def test_unsupported_deephyper_idioms_name_the_hpcnas_spelling(flows, argv, spelling):
    project(flows, "dhproj2")
    proc = flows.sh(f"cd dhproj2\nhpcnas hps ambs -p problem.py -r model_run.py {argv} --max-evals 2\n",
                    activate=False, timeout=120)
    assert proc.returncode == 2, transcript(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcnas: error:") and spelling in lines[0], proc.stderr
