"""The mpi evaluator's pieces that need no MPI job (the job itself: tests/e2e/test_mpi_evaluator.py)."""
from __future__ import annotations

import pickle
import sys

import pytest

from hpcnas.core import mpi_env
from hpcnas.core.errors import HpcnasError, MissingExtraError
from hpcnas.evaluator import mpi_comm
from hpcnas.evaluator.mpi_worker import LAUNCHER_ENV_PREFIXES, CommRun, _takes_comm, _without_launcher_env


def test_evaluation_comm_outside_an_evaluation_is_an_error():
    with pytest.raises(HpcnasError, match="only available inside an evaluation of --evaluator mpi"):
        mpi_comm.evaluation_comm()


@pytest.mark.parametrize("env, rank", [({}, None), ({"PMI_RANK": "3"}, 3), ({"OMPI_COMM_WORLD_RANK": "0"}, 0),
                                       ({"PMIX_RANK": "12"}, 12), ({"PMI_RANK": "x"}, None),
                                       ({"PALS_RANKID": "5"}, 5), ({"SLURM_PROCID": "1"}, 1)])
def test_launcher_rank_reads_the_launchers_variables(monkeypatch, env, rank):
    for name in mpi_env.RANK_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert mpi_env.launcher_rank() == rank


@pytest.mark.parametrize("env, size", [({}, 1), ({"PMI_SIZE": "4"}, 4), ({"OMPI_COMM_WORLD_SIZE": "2"}, 2),
                                       ({"PMI_SIZE": "0"}, 1), ({"SLURM_NTASKS": "8"}, 1)])
def test_launcher_size_reads_the_launchers_variables(env, size):
    assert mpi_env.launcher_size(env) == size


def _with_comm(config, comm=None):
    return {"objective": 1.0, "comm": comm, "api": mpi_comm.evaluation_comm()}


def _without_comm(config):
    return {"objective": 2.0, "api": mpi_comm.evaluation_comm()}


def test_comm_run_passes_the_communicator_only_to_run_functions_that_take_it():
    fake = object()
    out = CommRun(f"{__name__}._with_comm", None, comm=fake)({})
    assert out["comm"] is fake and out["api"] is fake
    assert CommRun(f"{__name__}._without_comm", None, comm=fake)({})["api"] is fake
    assert mpi_comm._CURRENT is None  # restored after the evaluation
    assert _takes_comm(lambda config, **kw: 0) and not _takes_comm(lambda config: 0)


def test_comm_run_travels_to_a_worker_process_without_its_communicator():
    run = pickle.loads(pickle.dumps(CommRun(f"{__name__}._with_comm", None, comm=object())))
    assert run.comm is None and run.reference == f"{__name__}._with_comm"


def test_worker_processes_do_not_see_the_launchers_environment(monkeypatch):
    monkeypatch.setenv("PMI_FD", "8")
    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setenv("HPCNAS_MF_ADDRESS", "h:1")
    import os

    with _without_launcher_env():
        assert not [k for k in os.environ if k.startswith(LAUNCHER_ENV_PREFIXES)]
        assert os.environ["HPCNAS_MF_ADDRESS"] == "h:1"
    assert os.environ["PMI_FD"] == "8" and os.environ["PMI_RANK"] == "1"


def test_missing_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'hpcnas\[mpi\]'"):
        mpi_comm.serve()


def test_abort_job_waits_until_the_launcher_has_read_its_last_line(monkeypatch):
    """A line printed just before ``MPI_Abort`` reaches the launcher: the abort comes only once the
    stderr pipe is empty (a launcher that reads late lost it: CI saw only the line before it)."""
    import os
    import threading
    import time

    read_end, write_end = os.pipe()
    got: list[bytes] = []

    def launcher() -> None:  # reads late, as a loaded proxy does
        time.sleep(0.4)
        got.append(os.read(read_end, 65536))

    class Comm:
        at_abort: int | None = None

        def Abort(self, code: int) -> None:
            Comm.at_abort = mpi_comm._unread(write_end)

    reader = threading.Thread(target=launcher, daemon=True)
    reader.start()
    with os.fdopen(write_end, "w", closefd=False) as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        mpi_comm.abort_job(Comm(), "hpcnas: error: the last line")
    reader.join(timeout=30)
    os.close(read_end), os.close(write_end)
    assert Comm.at_abort == 0 and got == [b"hpcnas: error: the last line\n"]
