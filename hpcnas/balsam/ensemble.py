"""``python -m hpcnas.balsam.ensemble``: Balsam's serial-mode ensemble that quits when its work is done.

Balsam 0.5's serial launcher runs ``balsam/launcher/serial_mode_timed.py`` on every node (the
first node's copy also starts the master). Its master quits only after ``MAX_IDLE_TIME`` =
120 s without a running job, so once a search has ended the allocation stays held for two
more minutes. This entry runs the same module (same arguments, same workers) with one more
exit rule on the master: when no job has run for ``HPCNAS_ENSEMBLE_IDLE_S`` seconds, the launcher's
workflow holds a search job (application ``AMBS``, ``RANDOM``, ``AGE`` or ``AGEBO``: the search
runs inside this launcher, as ``hpcnas balsam-submit`` sets it up) and no job of the workflow can
still run (every one is ``JOB_FINISHED``, ``FAILED`` or ``USER_KILLED``), it quits at once. A
workflow without a search job (the master runs elsewhere and may still submit evaluations) keeps
Balsam's 120 s rule, as do workflows whose remaining jobs cannot run in serial mode.
``HPCNAS_ENSEMBLE_IDLE_S`` sets the grace.

The ensemble runs as one ``srun``/``mpirun``/``aprun`` step over the allocation, so on node
``i`` its worker is task ``i`` of that step (``SLURM_PROCID=i``, ``PMI_RANK=i`` ...). Balsam's
worker hands its own environment to every job it starts; an evaluation on the second node would
then see itself as MPI rank 1 and never report (the job runner reports from rank 0 only). The
worker therefore starts its jobs without the step's rank and PMI variables
(:func:`job_environ`): each evaluation of serial mode is a process of its own, rank 0.

:mod:`hpcnas.balsam.launch` points the serial launcher here instead of Balsam's script. The
ensemble's polling periods (job source 1 s, status updates 1 s, worker loop 1 s in Balsam) are
those of :mod:`hpcnas.balsam.pacing`; hpcnas's evaluation jobs start as forks of a pre-imported
process (:mod:`hpcnas.balsam.forkserver`).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from hpcnas.core.environment import number, seconds
from hpcnas.core.mpi_env import without_step_variables

#: the variable of the seconds without a running job before the master looks at the workflow
IDLE_GRACE_KNOB = "HPCNAS_ENSEMBLE_IDLE_S"
#: seconds between two looks at the workflow (one DB query each), only while no job runs
CHECK_PERIOD_S = 0.25
#: the variable of the seconds without a message from a worker (they write every HPCNAS_WORKER_S, 0.05 s) before it
#: counts as lost
WORKER_LOST_KNOB = "HPCNAS_WORKER_LOST_S"
#: return code recorded for the jobs of a lost worker
LOST_RETCODE = -9


def check_knobs() -> None:
    """Raise :class:`~hpcnas.core.errors.UsageError` (one line) for a bad grace period."""
    number(IDLE_GRACE_KNOB), seconds(WORKER_LOST_KNOB)


class WorkerWatch:
    """Which jobs each serial worker runs and when it last wrote (a lost node's jobs).

    Balsam's master only learns that a job ended from its worker; a worker that dies with its
    node (SIGKILL, power, network) leaves its jobs ``RUNNING`` for ever and the master waiting
    at exit for its goodbye. :meth:`lost` names the workers silent for ``HPCNAS_WORKER_LOST_S`` seconds.
    """

    def __init__(self, lost_after: float | None = None) -> None:
        self.lost_after = seconds(WORKER_LOST_KNOB) if lost_after is None else lost_after
        self.last_seen: dict[str, float] = {}
        self.running: dict[str, set[str]] = {}
        self.gone: set[str] = set()

    def saw(self, msg: dict[str, Any], now: float) -> None:
        src = msg.get("source", "")
        self.last_seen[src] = now
        jobs = self.running.setdefault(src, set())
        jobs.update(msg.get("started") or [])
        jobs.difference_update(msg.get("done") or [])
        jobs.difference_update(err[0] for err in msg.get("error") or [])

    def lost(self, now: float) -> dict[str, set[str]]:
        """Workers newly silent for ``lost_after`` seconds -> the jobs they were running."""
        out = {}
        for src, seen in self.last_seen.items():
            if src not in self.gone and now - seen > self.lost_after:
                self.gone.add(src)
                out[src] = self.running.pop(src, set())
        return out

    @staticmethod
    def error_message(src: str, pks: set[str], silent_s: float) -> dict[str, Any]:
        """A status message (as a worker would send) failing ``pks``: ``RUN_ERROR`` with a reason."""
        tail = f"hpcnas: the worker on {src} has been silent for {silent_s:.0f} s (node lost); the job was running there"
        return {"source": src, "started": [], "done": [], "active": False,
                "error": [(pk, LOST_RETCODE, tail) for pk in sorted(pks)], "request_num_jobs": 0}


def job_environ(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` without the ensemble step's rank and wiring (:mod:`hpcnas.core.mpi_env`, module docstring)."""
    return without_step_variables(environ)


def workflow_done(models: Any, workflow: str | None) -> bool:
    """``workflow`` (substring match, as Balsam's job source) holds a search job and no job left to run."""
    from hpcnas.balsam.apps import SEARCH_APPS

    jobs = models.BalsamJob.objects.all()
    if workflow:
        jobs = jobs.filter(workflow__contains=workflow)
    if jobs.exclude(state__in=models.END_STATES).exists():
        return False
    return jobs.filter(application__in=list(SEARCH_APPS)).exists()


def _master_class(stm: Any) -> type:
    from balsam.core import models

    class Master(stm.Master):
        """Balsam's ensemble master plus the "workflow done" exit rule (module docstring)."""

        def __init__(self, args: Any) -> None:
            self.idle_grace = number(IDLE_GRACE_KNOB) or 0.0
            self.watch = WorkerWatch()
            super().__init__(args)
            self.wf_name = args.wf_name
            self.next_look = 0.0

        def handle_request(self) -> None:
            """Balsam's ``Master.handle_request`` (same steps), noting who wrote and what it runs."""
            msg = self.socket.recv_json()
            self.watch.saw(msg, time.time())
            self.status_updater.queue.put_nowait(msg)
            finished = set(msg["done"]) | {err[0] for err in msg["error"]}
            self.active_ids.update(msg["started"])
            self.active_ids -= finished
            self.socket.send_json({"new_jobs": self.job_source.get_jobs(msg["request_num_jobs"])})

        def fail_lost_workers(self) -> None:
            now = time.time()
            for src, pks in self.watch.lost(now).items():
                stm.logger.error(f"hpcnas: worker {src} silent for {self.watch.lost_after:.0f} s: node lost; "
                                 f"failing its {len(pks)} running job(s)")
                if pks:
                    self.status_updater.queue.put_nowait(WorkerWatch.error_message(src, pks, now - self.watch.last_seen[src]))
                    self.active_ids -= pks
                self.num_workers = max(0, self.num_workers - 1)  # no goodbye to wait for at exit

        def idle_check(self) -> None:
            self.fail_lost_workers()
            super().idle_check()
            if self.EXIT_FLAG or self.is_persistent or self.active_ids or self.idle_time is None:
                return
            now = time.time()
            if now - self.idle_time < self.idle_grace or now < self.next_look:
                return
            self.next_look = now + CHECK_PERIOD_S
            try:
                done = workflow_done(models, self.wf_name)
            finally:
                stm.connections.close_all()
            if done:
                stm.logger.info(f"hpcnas: no job of workflow {self.wf_name or '(all)'} is left to run: quitting")
                self.EXIT_FLAG = True

    return Master


def _launch_master() -> "subprocess.Popen[bytes]":
    """The master subprocess, started through this module (Balsam's re-runs ``sys.argv``)."""
    return subprocess.Popen([sys.executable, "-m", "hpcnas.balsam.ensemble", *sys.argv[1:], "--run-master"])


def serial_module() -> Any:
    """Balsam's ``serial_mode_timed`` module, its jobs' ``.out`` files opened by
    :func:`hpcnas.balsam.outfiles.keeping_open` (a job run again keeps its earlier attempts), its
    job source, status updater and worker loop at hpcnas's pace (:mod:`hpcnas.balsam.pacing`)."""
    from balsam.launcher import serial_mode_timed as stm

    from hpcnas.balsam import forkserver, outfiles, pacing

    outfiles.install(stm)
    pacing.install_serial(stm)
    forkserver.install(stm)
    return stm


def main() -> None:
    """The ``__main__`` block of Balsam's ``serial_mode_timed`` with the master above."""
    from balsam import config_logging

    stm = serial_module()
    args = stm.parse_args()
    hostname = socket.gethostname()
    if args.run_master:
        config_logging("serial-launcher", filename=args.log_filename + ".master", buffer_capacity=128)
        master = _master_class(stm)(args)

        def stop_master(signum: int, frame: Any) -> None:
            master.EXIT_FLAG = True

        signal.signal(signal.SIGINT, stop_master)
        signal.signal(signal.SIGTERM, stop_master)
        master.main()
        return
    config_logging("serial-launcher", filename=args.log_filename + "." + hostname, buffer_capacity=128)
    master_proc = _launch_master() if hostname == args.master_host else None
    clean = job_environ(dict(os.environ))  # Balsam's worker copies os.environ into each job
    for name in set(os.environ) - set(clean):
        del os.environ[name]
    worker = stm.Worker(args, hostname=hostname, master_subproc=master_proc)
    if getattr(stm, "_hpcnas_forkserver", False):
        from hpcnas.balsam import forkserver

        forkserver.server()  # the zygote imports while the worker waits for its first job

    def stop_worker(signum: int, frame: Any) -> None:
        worker.EXIT_FLAG = True

    signal.signal(signal.SIGINT, stop_worker)
    signal.signal(signal.SIGTERM, stop_worker)
    worker.main()


if __name__ == "__main__":
    main()
