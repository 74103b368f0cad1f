"""Launch lines per machine as pure render functions: plain values in, one command line out.

Each function renders what the machine's user guide shows for an MPI (+ threads) job; the
sources are listed in ``docs/machines.rst`` and the tests (``tests/unit/test_launch_lines.py``)
compare the text with those published examples. No environment variable, no file and no
subprocess is read here: the Balsam plug-ins (:mod:`hpcnas.balsam.mpi_commands`) gather the
values (host file, the launcher's path) and call these functions.

* :func:`aprun_line` -- Theta (Cray ALPS): ``aprun -n N -N R -L nids -cc depth -d T -j 1``
* :func:`openmpi_line` -- ThetaGPU: the machine's OpenMPI ``mpirun --hostfile F --host h:R,...``
* :func:`pals_line` -- Polaris, Aurora (Cray PALS): ``mpiexec -n N --ppn R --hosts h,...
  --depth=T --cpu-bind depth``
* :func:`srun_line` -- Perlmutter, Frontier (``--cpu-bind=cores``), any Slurm cluster
* :func:`mpich_line` -- a workstation (MPICH hydra ``mpirun -n N --ppn R``)
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

#: variables forwarded by name to remote ranks by OpenMPI's ``mpirun -x`` (Balsam puts the
#: job's variables into mpirun's own environment, which OpenMPI does not export by itself)
FORWARDED_VARIABLES = (
    "BALSAM_JOB_ID",
    "BALSAM_PARENT_IDS",
    "BALSAM_DB_PATH",
    "PATH",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
)


@dataclass(frozen=True)
class LaunchSpec:
    """One MPI job: ``len(hosts) * ranks_per_node`` ranks of ``threads_per_rank`` threads."""

    hosts: Sequence[Any]
    app_cmd: str
    ranks_per_node: int = 1
    threads_per_rank: int = 1
    threads_per_core: int = 1
    envs: Mapping[str, Any] = field(default_factory=dict)
    mpi_flags: str = ""

    @property
    def num_ranks(self) -> int:
        return max(1, len(self.hosts)) * self.ranks_per_node

    @property
    def host_names(self) -> list[str]:
        return [str(h) for h in self.hosts]


def _join(parts: Sequence[Any]) -> str:
    return " ".join(str(p) for p in parts if p not in (None, ""))


def _pairs(flag: str, envs: Mapping[str, Any]) -> list[str]:
    return [f"{flag} {name}={shlex.quote(str(value))}" for name, value in envs.items()]


def aprun_line(spec: LaunchSpec, cpu_affinity: str = "depth") -> str:
    """Theta: ``aprun -n N -N R [-L nid,...] -cc depth -d T -j J APP`` (``-cc none``: no -d/-j).

    The same text as Balsam's ``ThetaMPICommand`` (which the theta site uses), with the
    environment as ``-e NAME=value``.
    """
    parts: list[Any] = ["aprun", f"-n {spec.num_ranks}", f"-N {spec.ranks_per_node}"]
    parts += _pairs("-e", spec.envs)
    if spec.hosts:
        parts.append("-L " + ",".join(spec.host_names))
    parts.append(f"-cc {cpu_affinity}")
    if cpu_affinity == "depth":
        parts += [f"-d {spec.threads_per_rank}", f"-j {spec.threads_per_core}"]
    return _join([*parts, spec.mpi_flags, spec.app_cmd])


def openmpi_line(spec: LaunchSpec, mpirun: str = "mpirun", hostfile: str | None = None) -> str:
    """ThetaGPU: ``MPIRUN [--hostfile F] --host h:R,... -n N --npernode R [-x OMP_NUM_THREADS=T]
    -x VAR ... --bind-to none APP``.

    ``mpirun`` is the absolute path of the module's OpenMPI launcher (never pip MPICH's, which
    rejects ``--hostfile`` with ``--host``); ``--host h:R`` gives each node exactly R slots.
    """
    parts: list[Any] = [shlex.quote(mpirun)]
    if hostfile:
        parts.append(f"--hostfile {shlex.quote(hostfile)}")
    if spec.hosts:
        parts.append("--host " + ",".join(f"{h}:{spec.ranks_per_node}" for h in spec.host_names))
    parts += [f"-n {spec.num_ranks}", f"--npernode {spec.ranks_per_node}"]
    if spec.threads_per_rank > 1:
        parts.append(f"-x OMP_NUM_THREADS={spec.threads_per_rank}")
    parts += [f"-x {name}" for name in FORWARDED_VARIABLES if name not in spec.envs]
    parts += _pairs("-x", spec.envs)
    parts.append("--bind-to none")
    return _join([*parts, spec.mpi_flags, spec.app_cmd])


def pals_line(spec: LaunchSpec, mpiexec: str = "mpiexec") -> str:
    """Polaris / Aurora (Cray PALS): ``mpiexec -n N --ppn R [--hosts h,...] [--depth=T --cpu-bind
    depth --env OMP_NUM_THREADS=T] [--env VAR=value ...] APP``.

    ALCF's example is ``mpiexec -n ${NTOTRANKS} --ppn ${NRANKS_PER_NODE} --depth=${NDEPTH}
    --cpu-bind depth --env OMP_NUM_THREADS=${NTHREADS} ./hello_affinity``; PALS forwards the
    caller's environment, so only the job's own variables are added.
    """
    parts: list[Any] = [shlex.quote(mpiexec), f"-n {spec.num_ranks}", f"--ppn {spec.ranks_per_node}"]
    if spec.hosts:
        parts.append("--hosts " + ",".join(spec.host_names))
    if spec.threads_per_rank > 1:
        depth = spec.threads_per_rank * spec.threads_per_core
        parts += [f"--depth={depth}", "--cpu-bind depth", f"--env OMP_NUM_THREADS={spec.threads_per_rank}"]
    parts += _pairs("--env", spec.envs)
    return _join([*parts, spec.mpi_flags, spec.app_cmd])


def srun_line(spec: LaunchSpec, mpi_type: str = "", cpu_bind: str = "") -> str:
    """Slurm: ``srun --nodes K --nodelist a,b -n N --ntasks-per-node R [--cpus-per-task T]
    [--cpu-bind=cores] [--mpi=TYPE] --export=ALL[,VAR=value] APP``.

    NERSC (Perlmutter) and OLCF (Frontier) show ``srun -n N -c T --cpu-bind=cores`` /
    ``srun -N 2 -n 16 -c 7 ...``: their sites set ``cpu_bind="cores"``; a generic cluster keeps
    its default binding. ``mpi_type`` is the PMI (``pmi2``, ``pmix``) when ``MpiDefault`` lacks it.
    """
    export = "--export=ALL" + "".join(f",{k}={v}" for k, v in spec.envs.items())
    parts: list[Any] = ["srun"]
    if spec.hosts:
        parts += [f"--nodes {len(spec.hosts)}", f"--nodelist {','.join(spec.host_names)}"]
    parts += [f"-n {spec.num_ranks}", f"--ntasks-per-node {spec.ranks_per_node}"]
    if spec.threads_per_rank > 1:
        parts.append(f"--cpus-per-task {spec.threads_per_rank}")
    if cpu_bind:
        parts.append(f"--cpu-bind={cpu_bind}")
    if mpi_type:
        parts.append(f"--mpi={mpi_type}")
    parts.append(shlex.quote(export) if spec.envs else export)
    return _join([*parts, spec.mpi_flags, spec.app_cmd])


def mpich_line(spec: LaunchSpec) -> str:
    """A workstation: MPICH hydra ``mpirun -n N --ppn R [--env VAR value] APP`` (Balsam's
    ``MPICHCommand``, which the local site uses)."""
    parts: list[Any] = ["mpirun", f"-n {spec.num_ranks}", f"--ppn {spec.ranks_per_node}"]
    parts += [f"--env {name}={shlex.quote(str(value))}" for name, value in spec.envs.items()]
    return _join([*parts, spec.mpi_flags, spec.app_cmd])
