"""MPI launch commands that Balsam 0.5 lacks, as plug-ins to its ``MPI_RUN_TEMPLATE`` setting.

Balsam's launcher builds every job's command line with the class named by
``MPI_RUN_TEMPLATE`` in ``~/.balsam/settings.json``, looked up as an attribute of
``balsam.launcher.mpi_commands``. Its built-in classes cover Theta (``ThetaMPICommand``:
``aprun``) and a workstation (``MPICHCommand``), but:

* ``SlurmMPICommand`` ignores threads per rank (no ``--cpus-per-task``);
* ``ThetaGpuMPICommand`` reads ``COBALT_NODEFILE`` when it is *constructed* (so it cannot
  even be built outside an allocation), gives every host one slot and hides that with
  ``--oversubscribe``, and does not forward the job's own variables to remote ranks.

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
import shlex
from typing import Any, Iterable, Mapping, Sequence

from hpcnas.core.loading import optional_import

#: variables forwarded by name to remote ranks by ``mpirun -x`` (Balsam puts the job's
#: variables into mpirun's own environment, which OpenMPI does not export by itself)
FORWARDED_VARIABLES = (
    "BALSAM_JOB_ID",
    "BALSAM_PARENT_IDS",
    "BALSAM_DB_PATH",
    "PATH",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
)


def _balsam_base() -> type:
    module = optional_import("balsam.launcher.mpi_commands", "balsam")
    return module.MPICommand


def _join(parts: Iterable[Any]) -> str:
    return " ".join(str(p) for p in parts if p not in (None, ""))


def _hosts(workers: Sequence[Any]) -> list[str]:
    return [str(w.id) for w in workers]


def _env_pairs(flag: str, envs: Mapping[str, Any]) -> list[str]:
    return [f"{flag} {name}={shlex.quote(str(value))}" for name, value in envs.items()]


class _Plugin:
    """Mixin with the shared ``__call__``; subclasses implement :meth:`parts`."""

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
        workers = list(workers or [])
        parts = self.parts(
            workers,
            num_ranks=int(num_ranks),
            ranks_per_node=int(ranks_per_node),
            envs=dict(envs or {}),
            cpu_affinity=cpu_affinity,
            threads_per_rank=max(1, int(threads_per_rank or 1)),
            threads_per_core=max(1, int(threads_per_core or 1)),
        )
        return _join([*parts, mpi_flags, app_cmd])

    def parts(self, workers: list[Any], **kw: Any) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError


class SrunCommandMixin(_Plugin):
    """``srun`` inside a Slurm allocation, with threads as ``--cpus-per-task``.

    ``srun --nodes K --nodelist a,b -n N --ntasks-per-node R --cpus-per-task T [--mpi=TYPE]
    --export=ALL`` (the job's variables reach every rank through ``--export=ALL``; extra
    ``envs`` are added as ``--export=ALL,NAME=value``). ``mpi_type`` (Balsam setting
    ``HPCNAS_SRUN_MPI``, e.g. ``pmi2`` or ``pmix``) is the PMI the MPI library needs when the
    cluster's ``MpiDefault`` does not provide it; empty keeps the cluster's default.
    """

    mpi_type: str = ""

    def parts(self, workers, *, num_ranks, ranks_per_node, envs, threads_per_rank, **_):
        export = "--export=ALL" + "".join(f",{k}={v}" for k, v in envs.items())
        parts = ["srun"]
        if workers:
            parts += [f"--nodes {len(workers)}", f"--nodelist {','.join(_hosts(workers))}"]
        parts += [f"-n {num_ranks}", f"--ntasks-per-node {ranks_per_node}"]
        if threads_per_rank > 1:
            parts.append(f"--cpus-per-task {threads_per_rank}")
        if self.mpi_type:
            parts.append(f"--mpi={self.mpi_type}")
        parts.append(shlex.quote(export) if envs else export)
        return parts


class OpenMPIHostfileCommandMixin(_Plugin):
    """OpenMPI ``mpirun`` with the allocation's host file (ThetaGPU, any Cobalt/PBS GPU machine).

    ``mpirun --hostfile $COBALT_NODEFILE --host a:R,b:R -n N --npernode R -x OMP_NUM_THREADS=T
    -x BALSAM_JOB_ID ... --bind-to none``. The host file is read from ``HOSTFILE_VARIABLES``
    when the command is *called*, so the class can be built anywhere; ``--host h:R`` gives
    each chosen node exactly ``R`` slots instead of oversubscribing.
    """

    HOSTFILE_VARIABLES = ("COBALT_NODEFILE", "PBS_NODEFILE")
    #: absolute path of the OpenMPI ``mpirun``, set by the job script *before* it puts the
    #: virtualenv's ``bin`` first on PATH (pip's MPICH wheel, ``hpcnas[mpi]``, has an
    #: ``mpirun`` there that rejects ``--hostfile`` with ``--host``)
    MPIRUN_VARIABLE = "HPCNAS_MPIRUN"

    def mpirun(self) -> str:
        return os.environ.get(self.MPIRUN_VARIABLE) or "mpirun"

    def hostfile(self) -> str | None:
        for name in self.HOSTFILE_VARIABLES:
            if os.environ.get(name):
                return os.environ[name]
        return None

    def parts(self, workers, *, num_ranks, ranks_per_node, envs, threads_per_rank, **_):
        parts = [shlex.quote(self.mpirun())]
        hostfile = self.hostfile()
        if hostfile:
            parts.append(f"--hostfile {shlex.quote(hostfile)}")
        if workers:
            parts.append("--host " + ",".join(f"{h}:{ranks_per_node}" for h in _hosts(workers)))
        parts += [f"-n {num_ranks}", f"--npernode {ranks_per_node}"]
        if threads_per_rank > 1:
            parts.append(f"-x OMP_NUM_THREADS={threads_per_rank}")
        parts += [f"-x {name}" for name in FORWARDED_VARIABLES if name not in envs]
        parts += _env_pairs("-x", envs)
        parts.append("--bind-to none")
        return parts


#: Balsam setting value (``MPI_RUN_TEMPLATE``) -> mixin implementing it
PLUGIN_NAMES: dict[str, type] = {
    "HpcnasSrunCommand": SrunCommandMixin,
    "HpcnasOpenMPIHostfileCommand": OpenMPIHostfileCommandMixin,
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


def register_with_balsam(srun_mpi: str | None = None) -> list[str]:
    """Add every plug-in to ``balsam.launcher.mpi_commands`` so Balsam's settings can name it.

    ``srun_mpi`` sets ``--mpi=`` of ``HpcnasSrunCommand`` (None: leave as is). Idempotent;
    returns the names registered.
    """
    module = optional_import("balsam.launcher.mpi_commands", "balsam")
    for name in PLUGIN_NAMES:
        setattr(module, name, plugin_class(name))
    if srun_mpi is not None:
        plugin_class("HpcnasSrunCommand").mpi_type = str(srun_mpi).strip()
    return list(PLUGIN_NAMES)
