"""``python -m hpcnas.balsam.launch``: Balsam's launcher with hpcnas's plug-ins in place.

Takes exactly the arguments of ``balsam launcher`` (``--consume-all | --wf-filter WF``,
``--job-mode serial|mpi``, ``--time-limit-minutes``, ``--gpus-per-node`` ...) and runs Balsam's
own launcher ``main`` in this process, as ``balsam launcher`` does after its ``exec``, with these
additions and no file of Balsam changed:

* :mod:`hpcnas.balsam.mpi_commands` is registered, so ``MPI_RUN_TEMPLATE`` may name
  ``HpcnasSrunCommand`` or ``HpcnasOpenMPIHostfileCommand`` (configured from the
  ``HPCNAS_SRUN_MPI`` and ``HPCNAS_SRUN_CPU_BIND`` keys of ``settings.json``, when present),
  or ``HpcnasPalsCommand`` (Cray PALS ``mpiexec``);
* the serial-mode ensemble master listens on a free TCP port instead of Balsam's fixed 19876
  when it runs on this host (two launchers on one machine -- two allocations sharing a node,
  or tests -- otherwise collide and the second never runs a job). ``HPCNAS_ENSEMBLE_PORT``
  pins the port;
* a job run again keeps the ``.out`` file of its earlier attempt as ``NAME.out.1`` (``.2``, ...)
  instead of Balsam overwriting it (:mod:`hpcnas.balsam.outfiles`, installed in the launcher and the ensemble);
* under ``srun`` the serial ensemble's step survives the loss of one of its nodes
  (:func:`surviving_node_loss`);
* the serial ensemble is :mod:`hpcnas.balsam.ensemble` (Balsam's, plus one exit rule): it quits
  seconds after no job of the workflow is left to run, instead of holding the allocation for
  Balsam's 120 s of idle time; the MPI-mode launcher likewise quits after 2 idle loops instead
  of 10 once its workflow is done (:func:`hpcnas.balsam.ensemble.workflow_done`).

* the transition processes (``CREATED`` -> ``PREPROCESSED``, ``RUN_DONE`` -> ``JOB_FINISHED``)
  look for work every 0.5 s instead of every 5 s, and the serial ensemble polls at the periods of
  :mod:`hpcnas.balsam.pacing` (``HPCNAS_TRANSITION_S`` and the other knobs there);
* the serial ensemble starts hpcnas's own evaluation jobs as forks of a pre-imported process
  (:mod:`hpcnas.balsam.forkserver`; ``HPCNAS_FORK_SERVER=0``: plain processes).

It also keeps the launcher going across a DB outage: the launcher runs as a child process of
:class:`hpcnas.balsam.launcher_supervisor.LauncherSupervisor`, which restarts it once the DB
answers again (``HPCNAS_LAUNCHER_SUPERVISE=0``: no supervisor).

The shipped job scripts (``jobscripts/templates``) start the launcher this way.
"""
from __future__ import annotations

import os
import socket
import sys
from typing import Sequence

from hpcnas.core import environment

BALSAM_ENSEMBLE_PORT = 19876


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def ensemble_port(master_host: str) -> int:
    """The port for the serial ensemble master on ``master_host``."""
    port = environment.number("HPCNAS_ENSEMBLE_PORT", minimum=1, integer=True)
    if port is not None:
        return int(port)
    local = {socket.gethostname(), socket.gethostname().split(".")[0], "localhost"}
    return free_port() if master_host in local else BALSAM_ENSEMBLE_PORT


def with_port(app_cmd: str, port: int) -> str:
    """``app_cmd`` with its ``--master-address HOST:19876`` moved to ``port``."""
    return app_cmd.replace(f":{BALSAM_ENSEMBLE_PORT} ", f":{port} ", 1)


def with_ensemble(app_cmd: str, ensemble_exe: str) -> str:
    """``app_cmd`` running :mod:`hpcnas.balsam.ensemble` instead of Balsam's ``serial_mode_timed.py``."""
    return app_cmd.replace(f" {ensemble_exe} ", " -m hpcnas.balsam.ensemble ", 1)


def surviving_node_loss(mpi_cmd):
    """The ensemble's ``srun`` with ``--no-kill``: Slurm ends a step when one of its nodes
    fails, which would stop the workers of every node (and the search job among them); with it,
    the workers of the other nodes go on and the ensemble master fails the lost node's jobs
    (:mod:`hpcnas.balsam.ensemble`). Other launch commands are returned unchanged."""
    from hpcnas.balsam.mpi_commands import SrunCommandMixin

    if not isinstance(mpi_cmd, SrunCommandMixin):
        return mpi_cmd

    def ensemble_srun(workers, **kwargs):
        kwargs["mpi_flags"] = f"{kwargs.get('mpi_flags') or ''} --no-kill".strip()
        return mpi_cmd(workers, **kwargs)

    return ensemble_srun


def _patch_serial_launcher(launcher_module) -> None:
    base = launcher_module.SerialLauncher
    if getattr(base, "_hpcnas", False):
        return

    class SerialLauncher(base):  # type: ignore[misc, valid-type]
        _hpcnas = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            master = sorted(w.hostname for w in self.worker_group)[0]
            port = ensemble_port(master)
            self.app_cmd = with_ensemble(with_port(self.app_cmd, port), base.ZMQ_ENSEMBLE_EXE)
            launcher_module.logger.info(f"hpcnas: serial ensemble master on {master}:{port}")
            self.worker_group.mpi_cmd = surviving_node_loss(self.worker_group.mpi_cmd)

    launcher_module.SerialLauncher = SerialLauncher


#: idle loops (one per SERVICE_PERIOD) of the MPI-mode launcher before it looks at the workflow
MPI_IDLE_LOOPS = 2


def _workflow_done(workflow: str | None) -> bool:
    from balsam.core import models

    from hpcnas.balsam.ensemble import workflow_done

    return workflow_done(models, workflow)


def _patch_mpi_launcher(launcher_module) -> None:
    base = launcher_module.MPILauncher
    if getattr(base, "_hpcnas", False):
        return

    class MPILauncher(base):  # type: ignore[misc, valid-type]
        _hpcnas = True

        def check_exit(self):
            super().check_exit()
            if (launcher_module.EXIT_FLAG or self.is_persistent or self.is_active
                    or self.exit_counter < MPI_IDLE_LOOPS):
                return
            workflow = getattr(self.jobsource, "workflow", None)
            if _workflow_done(workflow):
                launcher_module.logger.info(f"hpcnas: no job of workflow {workflow or '(all)'} is left to run: quitting")
                launcher_module.EXIT_FLAG = True

    launcher_module.MPILauncher = MPILauncher


def check_knobs() -> None:
    """Raise :class:`~hpcnas.core.errors.UsageError` (one line) for a bad value of a launcher knob:
    the pacing periods, the serial ensemble's grace periods and the fork server's switch (here,
    not as a traceback in the ensemble's log)."""
    from hpcnas.balsam import ensemble, forkserver, pacing

    pacing.check_knobs()
    ensemble.check_knobs()
    forkserver.enabled()


def main(argv: Sequence[str] | None = None) -> int:
    from hpcnas.balsam.launcher_supervisor import CHILD_ENV, LauncherSupervisor, release_for

    argv = list(sys.argv[1:] if argv is None else argv)
    from hpcnas.core.errors import HpcnasError

    try:
        check_knobs()
    except HpcnasError as err:
        print(f"hpcnas: error: {err}", file=sys.stderr)
        return HpcnasError.exit_code
    supervise = environment.text("HPCNAS_LAUNCHER_SUPERVISE") != "0" and not environment.text(CHILD_ENV)
    if {"-h", "--help"} & set(argv):
        return run_launcher(argv)
    if os.environ.get(CHILD_ENV):  # the supervisor holds the launcher lock
        return run_launcher(argv)
    from hpcnas.balsam.launcher_lock import launcher_lock
    from hpcnas.balsam.launcher_supervisor import option_value

    try:
        if supervise:
            from hpcnas.balsam.connect import connect

            connect()
        lock = launcher_lock(None if "--consume-all" in argv else option_value(argv, "--wf-filter"))
        if lock is not None:
            lock.acquire()  # one launcher per DB and workflow, for the whole life of this process
    except HpcnasError as err:
        print(f"hpcnas: error: {err}", file=sys.stderr)
        return HpcnasError.exit_code
    release = release_for(argv)

    def relock_and_release() -> int:
        """After a DB outage (the lock's connection died with it): the lock again, then the jobs."""
        if lock is not None:
            lock.release()
            lock.acquire()  # another launcher started meanwhile: stop here, take none of its jobs
        return release()

    try:
        return LauncherSupervisor(argv, release=relock_and_release).run() if supervise else run_launcher(argv)
    except HpcnasError as err:
        print(f"hpcnas: error: {err}", file=sys.stderr)
        return HpcnasError.exit_code
    finally:
        if lock is not None:
            lock.release()


def run_launcher(argv: Sequence[str]) -> int:
    """Balsam's launcher ``main`` in this process, with hpcnas's plug-ins (module docstring)."""
    from balsam import config_logging, setup

    setup()
    from django.conf import settings

    from hpcnas.balsam.mpi_commands import register_with_balsam

    register_with_balsam(srun_mpi=getattr(settings, "HPCNAS_SRUN_MPI", ""),
                         srun_cpu_bind=getattr(settings, "HPCNAS_SRUN_CPU_BIND", ""))
    from balsam.launcher import launcher

    from hpcnas.balsam import pacing

    pacing.install_transitions()  # before launcher.main forks the transition processes
    _patch_serial_launcher(launcher)
    _patch_mpi_launcher(launcher)
    from hpcnas.balsam import outfiles

    outfiles.install(launcher)  # MPI mode: the launcher opens the jobs' .out files itself
    args = launcher.get_args(list(argv))
    config_logging("launcher")
    launcher.logger.info("Loading Balsam Launcher (hpcnas plug-ins registered)")
    launcher.main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
