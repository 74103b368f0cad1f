"""MPI launch commands that Balsam 0.5 lacks, as plug-ins to its ``MPI_RUN_TEMPLATE`` setting.

Balsam's launcher builds every job's command line with the class named by
``MPI_RUN_TEMPLATE`` in ``~/.balsam/settings.json``, looked up as an attribute of
``balsam.launcher.mpi_commands``. Its built-in classes cover Theta (``ThetaMPICommand``:
``aprun``) and a workstation (``MPICHCommand``), but:

* ``SlurmMPICommand`` ignores threads per rank (no ``--cpus-per-task``);
* there is no Cray PALS ``mpiexec`` (Polaris, Aurora);
* ``ThetaGpuMPICommand`` reads ``COBALT_NODEFILE`` when it is *constructed* (so it cannot
  even be built outside an allocation), gives every host one slot and hides that with
  ``--oversubscribe``, and does not forward the job's own variables to remote ranks.

The text of every line comes from the pure functions of :mod:`hpcnas.balsam.launch_lines`.
The classes here subclass Balsam's ``MPICommand`` and keep its call signature
``cmd(workers, *, app_cmd, num_ranks, ranks_per_node, envs, cpu_affinity,
threads_per_rank=1, threads_per_core=1, mpi_flags='')``. :func:`register_with_balsam` adds them
to ``balsam.launcher.mpi_commands`` under the names in :data:`PLUGIN_NAMES`, which is what
``hpcnas.balsam.launch`` (the launcher entry the job scripts call) does before Balsam's
launcher starts; no file of Balsam is changed. A worker is anything with an ``id`` (host name
or node id), like Balsam's ``launcher.worker.Worker``.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from hpcnas.balsam.launch_lines import LaunchSpec, openmpi_line, pals_line, srun_line
from hpcnas.core.loading import optional_import

#: environment variable with the absolute path of the machine's MPI launcher (job scripts)
MPIRUN_VARIABLE = "HPCNAS_MPIRUN"


def _balsam_base() -> type:
    module = optional_import("balsam.launcher.mpi_commands", "balsam")
    return module.MPICommand


def launcher_path(default: str) -> str:
    """The MPI launcher the job script found before it put the virtualenv first on PATH.

    ``$HPCNAS_MPIRUN`` (set by the ThetaGPU / Polaris / Aurora job scripts); ``default`` when
    unset. pip's MPICH wheel (``hpcnas[mpi]``) installs ``mpirun``/``mpiexec`` in the
    virtualenv's ``bin``, which would otherwise shadow the machine's OpenMPI or Cray PALS.
    """
    return os.environ.get(MPIRUN_VARIABLE) or default


class _Plugin:
    """Mixin with Balsam's call signature; subclasses implement :meth:`render`."""

    def __call__(
        self,
        workers: Sequence[Any],
        *,
        app_cmd: str,
        num_ranks: int,
        ranks_per_node: int,
        envs: Mapping[str, Any],
        cpu_affinity: str = "none",
        threads_per_rank: int = 1,
        threads_per_core: int = 1,
        mpi_flags: str = "",
    ) -> str:
        spec = LaunchSpec(
            hosts=[w.id for w in (workers or [])], app_cmd=app_cmd, ranks_per_node=int(ranks_per_node),
            threads_per_rank=max(1, int(threads_per_rank or 1)), threads_per_core=max(1, int(threads_per_core or 1)),
            envs=dict(envs or {}), mpi_flags=mpi_flags or "",
        )
        return self.render(spec)

    def render(self, spec: LaunchSpec) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class SrunCommandMixin(_Plugin):
    """``srun`` inside a Slurm allocation (:func:`hpcnas.balsam.launch_lines.srun_line`).

    ``mpi_type`` (setting ``HPCNAS_SRUN_MPI``: ``pmi2``, ``pmix``) is the PMI the MPI library
    needs when the cluster's ``MpiDefault`` lacks it; ``cpu_bind`` (setting
    ``HPCNAS_SRUN_CPU_BIND``, ``cores`` on Perlmutter and Frontier) adds ``--cpu-bind=``.
    """

    mpi_type: str = ""
    cpu_bind: str = ""

    def render(self, spec: LaunchSpec) -> str:
        return srun_line(spec, mpi_type=self.mpi_type, cpu_bind=self.cpu_bind)


class OpenMPIHostfileCommandMixin(_Plugin):
    """OpenMPI ``mpirun`` with the allocation's host file (ThetaGPU;
    :func:`hpcnas.balsam.launch_lines.openmpi_line`).

    The host file (``HOSTFILE_VARIABLES``) and the launcher (``$HPCNAS_MPIRUN``) are read when
    the command is *called*, so the class can be built anywhere.
    """

    HOSTFILE_VARIABLES = ("COBALT_NODEFILE", "PBS_NODEFILE")

    def hostfile(self) -> str | None:
        for name in self.HOSTFILE_VARIABLES:
            if os.environ.get(name):
                return os.environ[name]
        return None

    def render(self, spec: LaunchSpec) -> str:
        return openmpi_line(spec, mpirun=launcher_path("mpirun"), hostfile=self.hostfile())


class PalsCommandMixin(_Plugin):
    """Cray PALS ``mpiexec`` (Polaris, Aurora; :func:`hpcnas.balsam.launch_lines.pals_line`)."""

    def render(self, spec: LaunchSpec) -> str:
        return pals_line(spec, mpiexec=launcher_path("mpiexec"))


#: Balsam setting value (``MPI_RUN_TEMPLATE``) -> mixin implementing it
PLUGIN_NAMES: dict[str, type] = {
    "HpcnasSrunCommand": SrunCommandMixin,
    "HpcnasOpenMPIHostfileCommand": OpenMPIHostfileCommandMixin,
    "HpcnasPalsCommand": PalsCommandMixin,
}

_classes: dict[str, type] = {}


def plugin_class(name: str) -> type:
    """The Balsam ``MPICommand`` subclass registered as ``name`` (built on first use)."""
    if name not in _classes:
        mixin = PLUGIN_NAMES[name]
        base = _balsam_base()
        _classes[name] = type(name, (mixin, base), {"__doc__": mixin.__doc__})
    return _classes[name]


def command_class(name: str) -> type:
    """Resolve an ``MPI_RUN_TEMPLATE`` value: an hpcnas plug-in or one of Balsam's classes."""
    from hpcnas.core.errors import HpcnasError

    if name in PLUGIN_NAMES:
        return plugin_class(name)
    module = optional_import("balsam.launcher.mpi_commands", "balsam")
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        known = sorted(set(PLUGIN_NAMES) | {n for n in dir(module) if n.endswith("Command")})
        raise HpcnasError(f"unknown MPI_RUN_TEMPLATE '{name}': choose one of {', '.join(known)}")
    return cls


def register_with_balsam(srun_mpi: str | None = None, srun_cpu_bind: str | None = None) -> list[str]:
    """Add every plug-in to ``balsam.launcher.mpi_commands`` so Balsam's settings can name it.

    ``srun_mpi`` / ``srun_cpu_bind`` set ``--mpi=`` / ``--cpu-bind=`` of ``HpcnasSrunCommand``
    (None: leave as is). Idempotent; returns the names registered.
    """
    module = optional_import("balsam.launcher.mpi_commands", "balsam")
    for name in PLUGIN_NAMES:
        setattr(module, name, plugin_class(name))
    if srun_mpi is not None:
        plugin_class("HpcnasSrunCommand").mpi_type = str(srun_mpi).strip()
    if srun_cpu_bind is not None:
        plugin_class("HpcnasSrunCommand").cpu_bind = str(srun_cpu_bind).strip()
    return list(PLUGIN_NAMES)
