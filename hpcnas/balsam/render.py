"""Pure render functions: job scripts and MPI command lines as text, no subprocess.

Everything a scheduler or an MPI launcher will execute is produced here from plain values, so
it can be tested and inspected without a cluster (``hpcnas balsam-submit --dry-run`` prints
the same text). The job-script context is exactly the one Balsam 0.5's
``service/schedulers/JobTemplate.ScriptTemplate`` gives a template when ``balsam
submit-launch`` renders it: ``project, queue, nodes, time_minutes, job_mode, wf_filter,
sched_flags, balsam_bin, balsam_db_path, pg_bin``.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from hpcnas.core import environment
from hpcnas.core.errors import HpcnasError

#: environment variable naming a folder that replaces the shipped ``jobscripts/``
JOBSCRIPTS_ENV = "HPCNAS_JOBSCRIPTS"


def jobscripts_dir() -> str:
    """The ``jobscripts/`` folder: ``$HPCNAS_JOBSCRIPTS``, the source tree, or the installed copy."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [
        environment.text(JOBSCRIPTS_ENV) or "",
        os.path.join(os.path.dirname(os.path.dirname(here)), "jobscripts"),
        os.path.join(sys.prefix, "share", "hpcnas", "jobscripts"),
    ]
    for path in candidates:
        if path and os.path.isdir(os.path.join(path, "templates")):
            return path
    raise HpcnasError(
        "cannot find hpcnas's jobscripts/ folder (templates and site files); "
        f"set {JOBSCRIPTS_ENV} to a copy of it"
    )


def template_path(name: str) -> str:
    """Absolute path of the shipped template ``name`` (e.g. ``slurm.tmpl``)."""
    path = os.path.join(jobscripts_dir(), "templates", name)
    if not os.path.isfile(path):
        known = sorted(os.listdir(os.path.join(jobscripts_dir(), "templates")))
        raise HpcnasError(f"no job-script template '{name}': choose one of {', '.join(known)}")
    return path


def read_template(name: str) -> str:
    with open(template_path(name), encoding="utf-8") as fh:
        return fh.read()


@dataclass(frozen=True)
class LaunchRequest:
    """What ``balsam submit-launch`` asks a scheduler for (Balsam's ``QueuedLaunch``)."""

    nodes: int
    time_minutes: int
    queue: str
    job_mode: str = "serial"
    project: str = ""
    wf_filter: str | None = None
    sched_flags: str = ""

    def validate(self) -> None:
        if self.nodes < 1:
            raise HpcnasError(f"number of nodes must be >= 1, got {self.nodes}")
        if self.time_minutes < 1:
            raise HpcnasError(f"wall time must be >= 1 minute, got {self.time_minutes}")
        if self.job_mode not in ("serial", "mpi"):
            raise HpcnasError(f"job mode must be 'serial' or 'mpi', got '{self.job_mode}'")
        if not self.queue:
            raise HpcnasError("a queue (partition) is required: give -q QUEUE")


def template_context(
    request: LaunchRequest,
    *,
    balsam_bin: str,
    balsam_db_path: str,
    pg_bin: str,
    default_project: str = "",
) -> dict[str, Any]:
    """The variables Balsam's ``ScriptTemplate.qlaunch_to_dict`` hands a job template."""
    request.validate()
    return dict(
        project=request.project or default_project,
        queue=request.queue,
        nodes=int(request.nodes),
        time_minutes=int(request.time_minutes),
        job_mode=request.job_mode,
        wf_filter=f"wf-filter={request.wf_filter}" if request.wf_filter else "consume-all",
        sched_flags=request.sched_flags or "",
        balsam_bin=balsam_bin,
        balsam_db_path=balsam_db_path,
        pg_bin=pg_bin,
    )


def render_template_text(text: str, context: Mapping[str, Any]) -> str:
    """Render template ``text`` with jinja2 the way Balsam does (default ``Environment``)."""
    from jinja2 import Environment

    return Environment().from_string(text).render(dict(context))


def render_job_script(template: str, request: LaunchRequest, **env: str) -> str:
    """Render the shipped template ``template`` for ``request``.

    ``env`` gives ``balsam_bin``, ``balsam_db_path``, ``pg_bin`` (and optionally
    ``default_project``), the values Balsam takes from ``PATH`` and ``BALSAM_DB_PATH``.
    """
    return render_template_text(read_template(template), template_context(request, **env))


class _Worker:
    """Stand-in for Balsam's ``launcher.worker.Worker``: MPI commands only read ``id``."""

    def __init__(self, id: Any) -> None:
        self.id = id
        self.num_nodes = 1

    def __repr__(self) -> str:
        return f"worker{self.id}"


def mpi_command_line(
    mpi_run_template: str,
    hosts: Sequence[Any],
    *,
    app_cmd: str,
    ranks_per_node: int = 1,
    threads_per_rank: int = 1,
    threads_per_core: int = 1,
    envs: Mapping[str, Any] | None = None,
    cpu_affinity: str | None = None,
    mpi_flags: str = "",
    srun_mpi: str = "",
    srun_cpu_bind: str = "",
) -> str:
    """The command line Balsam's launcher runs for a job on ``hosts`` (its MPI mode).

    ``mpi_run_template`` is a settings value (``ThetaMPICommand``, ``HpcnasSrunCommand``,
    ``HpcnasOpenMPIHostfileCommand``, ``MPICHCommand`` ...). The job has
    ``len(hosts) * ranks_per_node`` ranks; whitespace is normalised. ``srun_mpi`` is the
    ``HPCNAS_SRUN_MPI`` setting of ``HpcnasSrunCommand``, ``srun_cpu_bind`` its
    ``HPCNAS_SRUN_CPU_BIND``. ``cpu_affinity`` defaults to what
    hpcnas gives such a job (:func:`hpcnas.balsam.jobs.cpu_affinity_for`).
    """
    from hpcnas.balsam.jobs import cpu_affinity_for
    from hpcnas.balsam.mpi_commands import command_class

    if not hosts:
        raise HpcnasError("an MPI command line needs at least one host")
    if ranks_per_node < 1 or threads_per_rank < 1:
        raise HpcnasError("ranks per node and threads per rank must be >= 1")
    cmd = command_class(mpi_run_template)()
    if hasattr(cmd, "mpi_type"):
        cmd.mpi_type = srun_mpi
        cmd.cpu_bind = srun_cpu_bind
    line = cmd(
        [_Worker(h) for h in hosts],
        app_cmd=app_cmd,
        num_ranks=len(hosts) * ranks_per_node,
        ranks_per_node=ranks_per_node,
        envs=dict(envs or {}),
        cpu_affinity=cpu_affinity_for(threads_per_rank) if cpu_affinity is None else cpu_affinity,
        threads_per_rank=threads_per_rank,
        threads_per_core=threads_per_core,
        mpi_flags=mpi_flags,
    )
    return " ".join(line.split())


def job_launch_line(
    mpi_run_template: str, hosts: Sequence[Any], job: Any, *, app_cmd: str, srun_mpi: str = "", srun_cpu_bind: str = "",
) -> str:
    """The line Balsam's launcher (``launcher.MPIRun``) builds for ``job`` on ``hosts``.

    ``job`` is a ``BalsamJob`` (or anything with its ``ranks_per_node``, ``threads_per_rank``,
    ``threads_per_core``, ``cpu_affinity`` and ``mpi_flags``): the launcher passes exactly those
    fields to the ``MPI_RUN_TEMPLATE`` command, so what a job row holds is what runs.
    """
    return mpi_command_line(
        mpi_run_template, hosts, app_cmd=app_cmd, ranks_per_node=int(job.ranks_per_node),
        threads_per_rank=int(job.threads_per_rank), threads_per_core=int(getattr(job, "threads_per_core", 1)),
        cpu_affinity=job.cpu_affinity, mpi_flags=getattr(job, "mpi_flags", "") or "", srun_mpi=srun_mpi,
        srun_cpu_bind=srun_cpu_bind,
    )
