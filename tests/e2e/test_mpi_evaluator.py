"""The mpi evaluator under real ``mpirun`` (MPICH + mpi4py): the shared contract, the CLI, a dead
rank, resume and bad input.

The contract runs inside one ``mpirun -n 4`` job (:mod:`tests.support.mpi_driver`: rank 0 runs
:mod:`tests.support.mpi_contract` with pytest, ranks 1..3 serve); this module asserts on its report.
"""
from __future__ import annotations

import csv
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
import time

import psutil
import pytest

from tests.support.components import require
from tests.support.evaluator_suite import EvaluatorSuite, ProcessIsolationSuite, TimeoutSuite

pytestmark = [pytest.mark.e2e, pytest.mark.mpi]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT, HPCNAS_DEBUG="")
HPCNAS = [sys.executable, "-m", "hpcnas.cli.main"]
TOY = ["--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.slow_run"]


def _mpirun() -> str:
    require("mpi4py", importlib.util.find_spec("mpi4py") is not None, "pip install 'hpcnas[mpi]'")
    path = shutil.which("mpirun")
    require("mpirun", path is not None, "MPICH mpirun on PATH")
    return str(path)


def rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def contract(tmp_path_factory) -> dict:
    """One ``mpirun -n 4`` running the whole contract module; its JSON report."""
    mpirun = _mpirun()
    report = tmp_path_factory.mktemp("mpi") / "contract.json"
    proc = subprocess.run([mpirun, "-n", "4", sys.executable, os.path.join(ROOT, "tests/support/mpi_driver.py"),
                           str(report)], capture_output=True, text=True, env=ENV, timeout=400, cwd=ROOT)
    assert proc.returncode == 0 and report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(report.read_text())


def _suite_tests() -> set[str]:
    return {f"TestMPIContract::{name}" for cls in (EvaluatorSuite, ProcessIsolationSuite, TimeoutSuite)
            for name, _ in inspect.getmembers(cls, inspect.isfunction) if name.startswith("test_")}


def test_contract_suite_passes_under_mpirun_with_4_ranks(contract) -> None:
    assert contract["ranks"] == 4
    failed = {name: t.get("error", "")[-600:] for name, t in contract["tests"].items() if t["outcome"] != "passed"}
    assert not failed, failed
    ran = {name.split("[")[0] for name in contract["tests"]}
    assert _suite_tests() <= ran, _suite_tests() - ran  # every contract test ran (none skipped or lost)
    assert {"test_resume_has_no_state_of_its_own", "test_evaluations_get_communicators_of_the_ranks_they_ask_for",
            "test_multi_rank_hang_times_out_and_its_ranks_come_back"} <= ran
    assert contract["exit_code"] == 0
    # every worker rank evaluated, alone and in groups
    workers = set(contract["by_worker"])
    assert {"rank-1", "rank-2", "rank-3", "rank-1+2", "rank-1+2+3"} <= workers, contract["by_worker"]


def _rank_pid(mpirun: psutil.Process, rank: int, limit: float = 60) -> int:
    """The pid of MPI rank ``rank`` among ``mpirun``'s descendants (its environment says PMI_RANK)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for child in mpirun.children(recursive=True):
            try:
                if child.environ().get("PMI_RANK") == str(rank):
                    return child.pid
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        time.sleep(0.1)
    pytest.fail(f"no process of MPI rank {rank} under mpirun")


def test_cli_search_survives_a_dead_worker_rank_by_resuming(tmp_path) -> None:
    """``mpirun -n 3 ... hps ambs --evaluator mpicomm``: the search on rank 0, evaluations on ranks
    1 and 2. kill -9 of rank 2 mid-search: mpirun ends every rank (no hang), results.csv keeps the
    finished evaluations, and the same command resumes without running them again."""
    mpirun = _mpirun()
    command = [mpirun, "-n", "3", *HPCNAS, "hps", "ambs", *TOY, "--evaluator", "mpicomm", "--max-evals", "20",
               "--seed", "1", "--output-dir", str(tmp_path), "--no-progress"]
    path = tmp_path / "results.csv"
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    try:
        victim = _rank_pid(psutil.Process(job.pid), 2)
        deadline = time.monotonic() + 120
        while not (path.exists() and len(rows(path)) >= 4):
            assert job.poll() is None and time.monotonic() < deadline, job.communicate()
            time.sleep(0.1)
        os.kill(victim, 9)
        start = time.monotonic()
        job.communicate(timeout=60)
        ended_in = time.monotonic() - start
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0 and ended_in < 30
    before = rows(path)
    assert 4 <= len(before) < 20 and all(r["status"] == "DONE" for r in before)

    resumed = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = rows(path)
    assert len(after) == 20 and len({r["job_id"] for r in after}) == 20
    assert after[: len(before)] == before
    assert f"({len(before)} resumed)" in resumed.stdout
    assert resumed.stdout.count("hps ambs | evaluator mpi, 2 workers | max evals 20") == 1  # rank 0 only
    assert "hpcnas runs it as --evaluator mpi" in resumed.stderr and "Traceback" not in resumed.stderr
    assert all(r["status"] == "DONE" for r in after)
    assert {r["worker"] for r in after[len(before):]} == {"rank-1", "rank-2"}


def test_a_rank_that_stops_serving_ends_the_job_instead_of_hanging(tmp_path) -> None:
    """A worker rank whose loop ends by an exception (here KeyboardInterrupt from a multi-rank run
    function on one rank) would leave rank 0 waiting forever: it ends the job with MPI_Abort."""
    mpirun = _mpirun()
    start = time.monotonic()
    proc = subprocess.run([mpirun, "-n", "3", *HPCNAS, "hps", "random", "--problem", "tests.support.toy.Problem",
                           "--run", "tests.support.run_functions.interrupt_in_group", "--evaluator", "mpi",
                           "--ranks-per-eval", "2", "--max-evals", "3", "--output-dir", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, env=ENV, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0 and time.monotonic() - start < 90
    assert "hpcnas: error: MPI rank 2 stopped serving evaluations (KeyboardInterrupt): ending the MPI job" in proc.stderr


def test_ranks_lost_to_a_hung_multi_rank_evaluation_end_the_job_instead_of_stalling(tmp_path) -> None:
    """A 2-rank evaluation hangs past --eval-timeout (TIMEOUT, its ranks set aside); the next one
    cannot start without them: after the stall grace (10 s) rank 0 ends the job with one line."""
    mpirun = _mpirun()
    start = time.monotonic()
    proc = subprocess.run([mpirun, "-n", "3", *HPCNAS, "hps", "random", "--problem", "tests.support.toy.Problem",
                           "--run", "tests.support.run_functions.hang", "--evaluator", "mpi", "--ranks-per-eval", "2",
                           "--eval-timeout", "1", "--max-evals", "3", "--output-dir", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, env=ENV, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0 and time.monotonic() - start < 100
    assert "hpcnas: error: MPI rank(s) 1, 2 still run a timed-out evaluation and no evaluation can start" in proc.stderr
    data = rows(tmp_path / "results.csv")
    assert [r["status"] for r in data] == ["TIMEOUT"] and data[0]["worker"] == "rank-1+2"


BLOCK_MPI4PY = "import sys; sys.modules['mpi4py'] = None; from hpcnas.cli.main import main; sys.exit(main())"


@pytest.mark.parametrize("launch, words", [
    ("alone", "the only MPI rank: start the search with mpirun -n N"),
    ("mpirun -n 1", "the only MPI rank: start the search with mpirun -n N"),
    ("no mpi4py", "pip install 'hpcnas[mpi]'"),
    # rank 0 refuses an option: it says so once, and the worker ranks leave (no hang)
    ("mpirun -n 3 --max-evals 0", "--max-evals must be at least 1, got 0"),
])
def test_bad_launch_is_a_one_line_error_exit_2(tmp_path, launch, words) -> None:
    mpirun = _mpirun()
    options = ["hps", "random", *TOY, "--evaluator", "mpi", "--max-evals", "2", "--output-dir", str(tmp_path)]
    command = {
        "alone": [*HPCNAS, *options],
        "mpirun -n 1": [mpirun, "-n", "1", *HPCNAS, *options],
        "no mpi4py": [sys.executable, "-c", BLOCK_MPI4PY, *options],
        "mpirun -n 3 --max-evals 0": [mpirun, "-n", "3", *HPCNAS, *options, "--max-evals", "0"],
    }[launch]
    proc = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcnas: error:") and words in lines[0], proc.stderr
    assert not (tmp_path / "results.csv").exists()
