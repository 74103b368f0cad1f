"""DeepHyper spellings taken by hpcnas (issue 14): argv translation and the NAS module names."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hpcnas.cli.deephyper_compat import submit_layout, translate
from hpcnas.core.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_translate_maps_deephyper_spellings(capsys):
    argv = ["-p", "pkg.Problem", "-r", "pkg.run", "--acq-func", "LCB", "--evaluator=threadPool",
            "--eval-timeout-minutes", "2", "--kappa", "1.5", "--eval-timeout=-inf"]
    assert translate(argv) == ["--problem", "pkg.Problem", "--run", "pkg.run", "--acq-func", "UCB",
                               "--evaluator", "local", "--eval-timeout", "120.0", "--kappa", "1.5",
                               "--eval-timeout=-inf"]
    notes = capsys.readouterr().err.strip().splitlines()
    assert len(notes) == 2 and all(n.startswith("hpcnas: note:") for n in notes)


def test_file_paths_name_problem_and_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert translate(["--problem", "problem.py", "--run", "model_run.py", "--run", "x.py:go"]) == [
        "--problem", f"{tmp_path}/problem.py:Problem", "--run", f"{tmp_path}/model_run.py:run", "--run", "x.py:go"]


def test_mpicomm_is_the_mpi_evaluator_with_a_note(capsys, monkeypatch):
    monkeypatch.delenv("PMI_RANK", raising=False)
    assert translate(["--evaluator", "mpicomm", "--max-evals", "3"]) == ["--evaluator", "mpi", "--max-evals", "3"]
    (note,) = capsys.readouterr().err.strip().splitlines()
    assert note.startswith("hpcnas: note:") and "--evaluator mpi" in note
    monkeypatch.setenv("PMI_RANK", "2")  # rank 2 of mpirun -n N: the note comes from rank 0 only
    assert translate(["--evaluator=mpicomm"]) == ["--evaluator", "mpi"]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, spelling", [(["--evaluator", "mpipool"], "--evaluator mpi under mpirun -n N"),
                                            (["--acq-func=gp_hedge"], "--acq-func UCB")])
def test_refused_idioms_name_the_hpcnas_spelling(argv, spelling):
    with pytest.raises(UsageError, match=spelling):
        translate(argv)


def test_balsam_submit_workflow_layout(capsys):
    assert submit_layout("hps", "test", ["-p", "P"]) == ("ambs", ["-w", "test", "-p", "P"])
    assert submit_layout("nas", "exp", ["--nas-method", "age", "-n", "2"]) == ("age", ["-w", "exp", "-n", "2"])
    assert submit_layout("hps", "random", ["-w", "WF"]) == ("random", ["-w", "WF"])  # hpcnas's own layout
    assert "balsam-submit hps ambs -w test" in capsys.readouterr().err


@pytest.mark.parametrize("module, search", [("regevo", "nas age"), ("full_random", "nas random")])
def test_deephyper_nas_module_names_run_the_hpcnas_search(module, search):
    proc = subprocess.run([sys.executable, "-m", f"hpcnas.search.nas.{module}", "--help"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert proc.returncode == 0 and f"usage: hpcnas {search}" in proc.stdout, proc.stderr


def test_the_guides_ppo_app_arguments_parse_with_deephypers_meaning():
    proc = subprocess.run([sys.executable, "-m", "hpcnas.search.nas.ppo", "--help"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert proc.returncode == 0 and "usage: hpcnas nas ppo" in proc.stdout, proc.stderr
    from hpcnas.cli.search_cmd import parse

    argv = ("--evaluator local --run tests.support.ppo_problems.match --problem tests.support.ppo_problems.Problem "
            "--ent-coef 0.01 --noptepochs 10 --network ppo_lnlstm_128 --gamma 1.0 --lam 0.95 --max-evals 1000000")
    args, search_dests, _ = parse("nas", "ppo", argv.split())
    assert (args.ent_coef, args.noptepochs, args.network, args.gamma, args.lam, args.max_evals) == \
        (0.01, 10, "ppo_lnlstm_128", 1.0, 0.95, 1000000)
    assert {"cliprange", "nminibatches", "lr", "num_agents"} <= set(search_dests)
