"""Machine sites (Theta, ThetaGPU, Slurm, local) and the MPI command lines Balsam will run."""
from __future__ import annotations

import json
import os

import pytest

from hpcnas.balsam import settings as balsam_settings
from hpcnas.balsam import sites
from hpcnas.balsam.mpi_commands import PLUGIN_NAMES, command_class, register_with_balsam
from hpcnas.balsam.render import jobscripts_dir, mpi_command_line, read_template
from hpcnas.core.errors import HpcnasError

APP = "python -m hpcnas.evaluator.runner P R cfg.json"


def site_file(name: str) -> dict:
    with open(os.path.join(jobscripts_dir(), "sites", f"{name}.json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_site_names_cover_every_machine():
    assert {"local", "theta", "thetagpu", "slurm"} <= set(sites.site_names())
    # one registry: the module constants are its entries, and settings keeps none of its own
    assert sites.get_site("thetagpu") is sites.THETAGPU and sites.get_site("local") is balsam_settings.LOCAL_SITE
    assert not hasattr(balsam_settings, "get_site") and not hasattr(balsam_settings, "_SITES")


def test_theta_settings():
    s = sites.get_site("theta").settings()
    assert s["SCHEDULER_CLASS"] == "CobaltScheduler"
    assert s["WORKER_DETECTION_TYPE"] == "THETA"
    assert s["MPI_RUN_TEMPLATE"] == "ThetaMPICommand"
    assert s["SERIAL_CORES_PER_NODE"] == 64
    assert s["JOB_TEMPLATE"] == "job-templates/hpcnas-theta.cobalt.tmpl"


def test_thetagpu_settings():
    site = sites.get_site("ThetaGPU")
    s = site.settings()
    assert (s["SCHEDULER_CLASS"], s["WORKER_DETECTION_TYPE"], s["MPI_RUN_TEMPLATE"]) == (
        "CobaltScheduler", "THETA_GPU", "HpcnasOpenMPIHostfileCommand")
    assert s["SERIAL_CORES_PER_NODE"] == 128
    assert site.gpus_per_node == 8


def test_slurm_settings_use_this_hosts_cores_unless_told():
    s = sites.get_site("slurm").settings()
    assert (s["SCHEDULER_CLASS"], s["WORKER_DETECTION_TYPE"], s["MPI_RUN_TEMPLATE"]) == (
        "SlurmScheduler", "SLURM", "HpcnasSrunCommand")
    assert s["SERIAL_CORES_PER_NODE"] == os.cpu_count()
    assert s["DEFAULT_PROJECT"] == ""
    assert sites.get_site("slurm", cores_per_node=48).settings()["SERIAL_CORES_PER_NODE"] == 48
    with pytest.raises(HpcnasError, match="cores per node"):
        sites.get_site("slurm", cores_per_node=0)


def test_unknown_machine_lists_choices():
    with pytest.raises(HpcnasError, match="thetagpu") as info:
        sites.get_site("summit")
    assert "unknown machine 'summit'" in str(info.value)


@pytest.mark.parametrize("name", ["local", "theta", "thetagpu", "slurm"])
def test_site_files_hold_every_balsam_key(name):
    """Balsam replaces a settings.json that misses a default key with its Theta defaults."""
    data = site_file(name)
    assert data["name"] == name
    assert set(balsam_settings.balsam_default_settings()) <= set(data["balsam_settings"])


def test_local_site_file_matches_local_site():
    shipped = site_file("local")["balsam_settings"]
    local = balsam_settings.LOCAL_SITE.settings()
    for key in ("WORKER_DETECTION_TYPE", "MPI_RUN_TEMPLATE", "SCHEDULER_CLASS"):
        assert shipped[key] == local[key], key
    assert shipped["SERIAL_CORES_PER_NODE"] == "auto"


@pytest.mark.parametrize("name", ["theta", "thetagpu", "slurm"])
def test_install_site_writes_settings_and_template(name, tmp_path):
    path = balsam_settings.install_site(sites.get_site(name), balsam_home=str(tmp_path))
    written = json.loads(open(path).read())
    assert set(balsam_settings.balsam_default_settings()) <= set(written)
    assert written["HPCNAS_SITE"] == name
    template = tmp_path / written["JOB_TEMPLATE"]
    assert template.read_text() == read_template(sites.get_site(name).template)


def test_site_validation_rejects_unknown_mpi_command():
    bad = sites.MachineSite(name="x", mpi_run_template="NoSuchCommand")
    with pytest.raises(HpcnasError, match="MPI_RUN_TEMPLATE"):
        bad.settings()


def test_site_without_its_template_file_is_an_error(tmp_path):
    data = site_file("slurm")
    data["template"] = "gone.tmpl"
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    site = sites.load_site_file(str(path))
    with pytest.raises(HpcnasError, match="gone.tmpl"):
        site.settings()


def test_broken_site_file_is_one_line_error(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(HpcnasError, match="cannot read site file"):
        sites.load_site_file(str(path))


# ------------------------------------------------------------- MPI command lines
# a multi-node job: 2 nodes x 4 ranks per node x 2 threads per rank


def test_theta_aprun_line():
    line = mpi_command_line(sites.THETA.mpi_run_template, [3810, 3811], app_cmd=APP,
                            ranks_per_node=4, threads_per_rank=2)
    assert line == f"aprun -n 8 -N 4 -L 3810,3811 -cc depth -d 2 -j 1 {APP}"


def test_thetagpu_mpirun_hostfile_line(monkeypatch, tmp_path):
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("thetagpu01\nthetagpu02\n")
    monkeypatch.setenv("COBALT_NODEFILE", str(nodefile))
    line = mpi_command_line(sites.THETAGPU.mpi_run_template, ["thetagpu01", "thetagpu02"],
                            app_cmd=APP, ranks_per_node=4, threads_per_rank=2)
    assert line == (
        f"mpirun --hostfile {nodefile} --host thetagpu01:4,thetagpu02:4 -n 8 --npernode 4 "
        "-x OMP_NUM_THREADS=2 -x BALSAM_JOB_ID -x BALSAM_PARENT_IDS -x BALSAM_DB_PATH -x PATH "
        f"-x LD_LIBRARY_PATH -x PYTHONPATH --bind-to none {APP}"
    )


def test_thetagpu_command_builds_outside_an_allocation(monkeypatch):
    monkeypatch.delenv("COBALT_NODEFILE", raising=False)
    monkeypatch.delenv("PBS_NODEFILE", raising=False)
    line = mpi_command_line("HpcnasOpenMPIHostfileCommand", ["g1"], app_cmd="a",
                            envs={"MY_VAR": "two words"})
    assert line.startswith("mpirun --host g1:1 -n 1 --npernode 1 -x BALSAM_JOB_ID")
    assert "-x MY_VAR='two words'" in line and "OMP_NUM_THREADS" not in line


def test_slurm_srun_line():
    line = mpi_command_line(sites.SLURM.mpi_run_template, ["cn001", "cn002"], app_cmd=APP,
                            ranks_per_node=4, threads_per_rank=2)
    assert line == (
        "srun --nodes 2 --nodelist cn001,cn002 -n 8 --ntasks-per-node 4 --cpus-per-task 2 "
        f"--export=ALL {APP}"
    )


def test_srun_line_with_pmi_setting():
    line = mpi_command_line("HpcnasSrunCommand", ["cn001"], app_cmd="a.out", ranks_per_node=2, srun_mpi="pmi2")
    assert line == "srun --nodes 1 --nodelist cn001 -n 2 --ntasks-per-node 2 --mpi=pmi2 --export=ALL a.out"
    assert sites.get_site("slurm").settings()["HPCNAS_SRUN_MPI"] == ""


def test_local_mpich_line():
    line = mpi_command_line(balsam_settings.LOCAL_SITE.mpi_run_template, ["vm"], app_cmd=APP,
                            ranks_per_node=2)
    assert line == f"mpirun -n 2 --ppn 2 {APP}"


def test_plugins_register_into_balsam():
    import balsam.launcher.mpi_commands as balsam_mpi

    names = register_with_balsam()
    assert set(names) == set(PLUGIN_NAMES)
    for name in names:
        cls = getattr(balsam_mpi, name)
        assert issubclass(cls, balsam_mpi.MPICommand)
        assert command_class(name) is cls
    # Balsam's serial launcher calls the command without thread arguments
    line = balsam_mpi.HpcnasSrunCommand()(
        [type("W", (), {"id": "vm"})()], app_cmd="python ens.py", num_ranks=1,
        ranks_per_node=1, cpu_affinity="none", envs={})
    assert line == "srun --nodes 1 --nodelist vm -n 1 --ntasks-per-node 1 --export=ALL python ens.py"


def test_unknown_mpi_command_is_user_error():
    with pytest.raises(HpcnasError, match="HpcnasSrunCommand"):
        command_class("FooCommand")
