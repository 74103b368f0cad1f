"""Launch lines of real jobs, end to end without a cluster.

* Theta: the evaluator's job, as Balsam's launcher reads it, must give ``aprun ... -cc depth
  -d T -j 1`` when the evaluation asks for T > 1 threads per rank.
* ThetaGPU with pip's MPICH (``hpcnas[mpi]``): the job script puts the virtualenv's ``bin``
  first on PATH; the OpenMPI line must still run the module's OpenMPI ``mpirun``, not the
  wheel's MPICH one (which rejects ``--hostfile`` + ``--host``: rc 255).
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from types import SimpleNamespace

import pytest

from hpcnas.balsam import sites
from hpcnas.balsam.render import LaunchRequest, job_launch_line, render_job_script

APP = "python -m hpcnas.balsam.job_runner R b64:e30"


class _FakeJob:
    """Records the fields the evaluator gives ``BalsamJob(...)`` (Balsam's model defaults kept)."""

    created: list["_FakeJob"] = []

    def __init__(self, **fields):
        self.threads_per_core = 1
        self.cpu_affinity = "none"  # BalsamJob's default
        self.mpi_flags = ""
        self.__dict__.update(fields)
        self.pk = uuid.uuid4()

    @property
    def num_ranks(self) -> int:
        return self.num_nodes * self.ranks_per_node


class _Objects:
    @staticmethod
    def bulk_create(objs):
        _FakeJob.created.extend(objs)


_FakeJob.objects = _Objects()


@pytest.fixture
def fake_db(monkeypatch):
    import hpcnas.balsam.apps as apps
    import hpcnas.balsam.connect as connect

    monkeypatch.delenv("BALSAM_JOB_ID", raising=False)
    monkeypatch.setenv("HPCNAS_FAST_FORWARD", "0")  # the fake has no ApplicationDefinition table
    db = SimpleNamespace(BalsamJob=_FakeJob, connection=None)
    monkeypatch.setattr(connect, "connect", lambda: db)
    monkeypatch.setattr(apps, "ensure_runner_app", lambda db, python=None: "HPCNAS_RUN")
    _FakeJob.created = []
    return db


@pytest.mark.parametrize("threads, ranks", [(4, 2), (2, 1)])
def test_theta_job_of_the_evaluator_gets_depth_binding(fake_db, threads, ranks):
    from hpcnas.evaluator.base import create_evaluator

    ev = create_evaluator("balsam", "tests.support.run_functions.echo", num_workers=1, workflow="w",
                          num_nodes_per_eval=2, num_ranks_per_node=ranks, num_threads_per_rank=threads,
                          verbose=False)
    ev.submit([{"x": 1.0}])
    (job,) = _FakeJob.created
    line = job_launch_line(sites.THETA.mpi_run_template, [3810, 3811], job, app_cmd=APP)
    assert line == f"aprun -n {2 * ranks} -N {ranks} -L 3810,3811 -cc depth -d {threads} -j 1 {APP}"


def test_theta_single_thread_job_keeps_balsam_default(fake_db):
    from hpcnas.evaluator.base import create_evaluator

    ev = create_evaluator("balsam", "tests.support.run_functions.echo", num_workers=1, workflow="w", verbose=False)
    ev.submit([{"x": 1.0}])
    (job,) = _FakeJob.created
    assert job_launch_line("ThetaMPICommand", [7], job, app_cmd=APP) == f"aprun -n 1 -N 1 -L 7 -cc none {APP}"


# ------------------------------------------------------------------ ThetaGPU + pip MPICH

_DRIVER = """
import os, shlex, subprocess, sys
from hpcnas.balsam.render import mpi_command_line
hosts = open(os.environ["COBALT_NODEFILE"]).read().split()
line = mpi_command_line("HpcnasOpenMPIHostfileCommand", hosts, app_cmd="true", ranks_per_node=2)
# what Balsam's launcher does with a job's line: shlex.split + Popen with its own environment
sys.exit(subprocess.run(shlex.split(line), env=dict(os.environ)).returncode)
"""

_OPENMPI = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "mpirun (Open MPI) 4.1.4"; exit 0; fi
echo "$@" > "{record}"
"""


def _exe(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _pip_mpich_mpirun() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "mpirun")
    if not os.access(path, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"pip's MPICH mpirun is missing at {path}: pip install 'hpcnas[mpi]'")
        pytest.skip("pip's MPICH (hpcnas[mpi]) is not installed in this environment")
    return path


def _thetagpu_job(tmp_path, with_openmpi: bool):
    """Render and run the ThetaGPU job script with a stub launcher; returns (process, record file)."""
    venv_bin = tmp_path / "venv" / "bin"
    module_bin = tmp_path / "openmpi" / "bin"
    venv_bin.mkdir(parents=True)
    module_bin.mkdir(parents=True)
    os.symlink(_pip_mpich_mpirun(), venv_bin / "mpirun")  # what hpcnas[mpi] installs
    record = tmp_path / "openmpi-args"
    if with_openmpi:
        _exe(module_bin / "mpirun", _OPENMPI.format(record=record))
    (tmp_path / "driver.py").write_text(_DRIVER)
    _exe(venv_bin / "python", f'#!/bin/sh\nexec {sys.executable} {tmp_path / "driver.py"}\n')
    for name in ("balsamactivate", "balsamdeactivate"):
        (venv_bin / name).write_text("true\n")
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("thetagpu01\nthetagpu02\n")
    script = render_job_script(
        sites.THETAGPU.template, LaunchRequest(nodes=2, time_minutes=10, queue="full-node", job_mode="mpi"),
        balsam_bin=str(venv_bin), balsam_db_path=str(tmp_path / "db"), pg_bin=str(tmp_path / "pg"),
    )
    (tmp_path / "job.sh").write_text(script)
    env = {"PATH": f"{module_bin}:/usr/bin:/bin", "HOME": str(tmp_path), "COBALT_NODEFILE": str(nodefile),
           "PYTHONPATH": os.environ.get("PYTHONPATH", os.getcwd())}
    proc = subprocess.run(["bash", str(tmp_path / "job.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    return proc, record, nodefile


def test_thetagpu_job_script_runs_the_modules_openmpi_not_pip_mpich(tmp_path):
    proc, record, nodefile = _thetagpu_job(tmp_path, with_openmpi=True)
    assert "duplicate host file" not in proc.stderr + proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    args = record.read_text().split()
    assert args[:2] == ["--hostfile", str(nodefile)] and "thetagpu01:2,thetagpu02:2" in args


def test_thetagpu_job_script_without_openmpi_is_one_line_error(tmp_path):
    proc, record, _ = _thetagpu_job(tmp_path, with_openmpi=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no OpenMPI mpirun" in lines[0] and "HPCNAS_MPIRUN=" in lines[0]
    assert not record.exists()
