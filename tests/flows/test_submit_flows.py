"""Flows: the guide's batch submissions on Theta, typed as DeepHyper users type them.

* ``hpcnas balsam-submit hps test -p P -r R -t 60 -q debug-cache-quad -n 4 -A datascience -j mpi``
  (positional workflow name, ``-p/-r/-j``): the search job AMBS in workflow ``test``;
* the AgEBO experiment's ``hpcnas ray-submit nas agebo -w ... -as ../SetUpEnv.sh --n-jobs 16``
  without ``--scheduler``: the machine's site (Theta: Cobalt) decides.

Both run with ``--dry-run`` (this machine has no Cobalt), in a HOME set up for Theta with
``hpcnas balsam-setup --machine theta``.
"""
from __future__ import annotations

import pytest

from tests.flows.conftest import transcript

pytestmark = [pytest.mark.e2e]

THETA = "mkdir -p theta/exp && cd theta && export HOME=$PWD && hpcnas balsam-setup --machine theta >/dev/null\n"


def test_balsam_submit_in_the_guides_layout(flows):
    proc = flows.sh(
        THETA + "hpcnas balsam-submit hps test -p tests.support.toy.Problem -r tests.support.toy.run "
        "-t 60 -q debug-cache-quad -n 4 -A datascience -j mpi --dry-run\n", activate=False,
    )
    assert proc.returncode == 0, transcript(proc)
    assert "search job 'search' in workflow test: AMBS --evaluator balsam --problem tests.support.toy.Problem" \
        in proc.stdout, transcript(proc)
    assert "mpi mode: 4 node(s) minus 1 for the search job = 3 node(s)" in proc.stdout
    assert "submit-launch -n 4 -t 60 -q debug-cache-quad -A datascience --job-mode mpi --wf-filter test" \
        in proc.stdout
    assert "#COBALT -n 4" in proc.stdout and "#COBALT -A datascience" in proc.stdout
    assert "balsam-submit hps ambs -w test" in proc.stderr  # the note: how hpcnas spells it


def test_ray_submit_agebo_takes_the_scheduler_from_the_site(flows):
    proc = flows.sh(
        THETA + "cd exp && printf 'export X=1\\n' > ../SetUpEnv.sh\n"
        "hpcnas ray-submit nas agebo -w combo_2gpu_8_agebo_sync -n 8 -t 180 -A datascience -q full-node "
        "--problem hpcnas.nas.problems.combo.problem.Problem --run hpcnas.nas.run.tf_distributed.run "
        "--max-evals 10000 --num-cpus-per-task 2 --num-gpus-per-task 2 -as ../SetUpEnv.sh --n-jobs 16 --dry-run\n",
        activate=False,
    )
    assert proc.returncode == 0, transcript(proc)
    assert "#COBALT" in proc.stdout and "-q full-node" in proc.stdout, transcript(proc)
    assert "nas agebo" in proc.stdout and "--n-jobs 16" in proc.stdout and "--num-gpus-per-task 2" in proc.stdout


def test_ray_submit_without_a_site_asks_for_the_scheduler(flows):
    proc = flows.sh(
        "mkdir -p nosite && cd nosite && export HOME=$PWD\n"
        "hpcnas ray-submit hps ambs -w E -n 1 -t 10 -q debug --problem tests.support.toy.Problem "
        "--run tests.support.toy.run --dry-run\n", activate=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--scheduler cobalt|pbs|slurm" in lines[0] and "balsam-setup --machine" in lines[0]
