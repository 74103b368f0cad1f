"""Balsam 0.x's pace, set by hpcnas: the periods of the launcher's polling loops.

Balsam's serial-mode path of one job is four polling loops, each with a fixed period in its
source (Balsam 0.5 defaults in brackets):

* ``HPCNAS_TRANSITION_S`` (0.5 s [5 s refresh + 1 s sleep]): the transition processes look for
  jobs to move (``CREATED`` -> ``PREPROCESSED``, ``RUN_DONE`` -> ``JOB_FINISHED``);
* ``HPCNAS_JOBSOURCE_S`` (0.05 s [1 s]): the ensemble master fetches runnable jobs;
* ``HPCNAS_STATUS_BATCH_S`` (0.05 s [1 s]): the ensemble master batches state updates
  (``RUNNING``, ``RUN_DONE``) before writing them;
* ``HPCNAS_WORKER_S`` (0.05 s [1 s]): the serial worker polls its processes and asks the master
  for jobs.

:func:`install_transitions` replaces ``balsam.core.transitions._main`` (the loop each transition
process runs) with :func:`transition_loop`, the same steps with the period above;
:func:`install_serial` replaces the job source, the status updater and the worker's main loop
of ``balsam.launcher.serial_mode_timed`` by subclasses that differ only in their period. Both
are installed by :mod:`hpcnas.balsam.launch` and :mod:`hpcnas.balsam.ensemble` in their own
processes; no file of Balsam is changed. A knob set to Balsam's value gives about Balsam's pace
(hpcnas's transition loop is not line for line Balsam's).
The names patched are listed in :data:`PATCHED` (a unit test checks they exist in the installed
Balsam, so an upgrade that renames them fails the tests instead of silently ignoring a knob).

The paced worker also asks the master only for the jobs its node has room for
(:func:`jobs_to_request`), not for Balsam's ``--worker-prefetch-count`` (64): with 64, the first
worker to ask took every runnable job of a search and ran them 4 at a time on its node while
the other nodes of the allocation stayed idle.

The shorter periods cost database queries: each transition process runs one ``SELECT`` per
period while it has nothing to do, the job source one; measured figures in ``docs/balsam.rst``.
"""
from __future__ import annotations

import queue
import signal
import time
from typing import Any

from hpcnas.core.environment import seconds


def transition_period() -> float:
    return seconds("HPCNAS_TRANSITION_S")


def jobsource_period() -> float:
    return seconds("HPCNAS_JOBSOURCE_S")


def status_batch_period() -> float:
    return seconds("HPCNAS_STATUS_BATCH_S")


def worker_period() -> float:
    return seconds("HPCNAS_WORKER_S")


def check_knobs() -> None:
    """Raise :class:`~hpcnas.core.errors.UsageError` (one line) for a knob that is not a positive number."""
    transition_period(), jobsource_period(), status_batch_period(), worker_period()


#: (module, attribute) of Balsam that hpcnas replaces or subclasses, and the names it calls there
PATCHED: tuple[tuple[str, str], ...] = (
    ("balsam.core.transitions", "_main"),
    ("balsam.core.transitions", "main"),
    ("balsam.core.transitions", "refresh_cache"),
    ("balsam.core.transitions", "fast_forward"),
    ("balsam.core.transitions", "release_jobs"),
    ("balsam.core.transitions", "update_states_from_cache"),
    ("balsam.core.transitions", "TRANSITIONS"),
    ("balsam.core.transitions", "JOBCACHE_LIMIT"),
    ("balsam.core.transitions", "BalsamTransitionError"),
    ("balsam.core.transitions", "EXIT_FLAG"),
    ("balsam.core.transitions", "logger"),
    ("balsam.launcher.serial_mode_timed", "BalsamJobSource"),
    ("balsam.launcher.serial_mode_timed", "BalsamDBStatusUpdater"),
    ("balsam.launcher.serial_mode_timed", "Worker"),
    ("balsam.launcher.serial_mode_timed", "connections"),
    ("balsam.launcher.serial_mode_timed", "logger"),
)


def transition_loop(thread_idx: int, num_threads: int) -> None:
    """``balsam.core.transitions._main`` with :func:`transition_period` instead of its 5 s / 1 s."""
    from io import StringIO
    from traceback import print_exc

    from balsam.core import transitions as tr

    period = transition_period()
    job_cache: list[Any] = []
    while not tr.EXIT_FLAG:
        if len(job_cache) < tr.JOBCACHE_LIMIT:
            tr.refresh_cache(job_cache, num_threads, thread_idx)
        tr.fast_forward(job_cache)
        job_cache = tr.release_jobs(job_cache)
        if not job_cache:
            time.sleep(period)
            continue
        before = [job.state for job in job_cache]
        for job in job_cache:
            try:
                tr.TRANSITIONS[job.state](job)
            except tr.BalsamTransitionError:
                job.state = "FAILED"
                buf = StringIO()
                print_exc(file=buf)
                setattr(job, "__fail_msg", buf.getvalue())  # the attribute Balsam's fail_update reads
                tr.logger.exception(f"Marking {job.cute_id} as FAILED")
            if tr.EXIT_FLAG:
                break
        tr.update_states_from_cache(job_cache)
        if before == [job.state for job in job_cache]:  # nothing moved: do not spin
            time.sleep(period)


def install_transitions() -> None:
    """Make Balsam's transition processes (started after this call) run :func:`transition_loop`."""
    from balsam.core import transitions

    transition_period()  # a bad value fails here, in the launcher, with one line
    transitions._main = transition_loop


def install_serial(stm: Any) -> None:
    """Replace the periods of ``serial_mode_timed`` (module ``stm``) by the knobs above."""
    if getattr(stm, "_hpcnas_paced", False):
        return
    source_period, batch_period, loop_period = jobsource_period(), status_batch_period(), worker_period()

    class JobSource(stm.BalsamJobSource):  # type: ignore[misc, valid-type]
        """Balsam's job source fetching every ``HPCNAS_JOBSOURCE_S`` instead of every second."""

        def run(self) -> None:
            stm.connections.close_all()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while not self._exit_flag.wait(source_period):
                fetch_count = max(0, self.prefetch_depth - self.queue.qsize())
                if fetch_count:
                    for job in self._acquire_jobs(fetch_count):
                        self.queue.put_nowait(job)
            self._on_exit()

    class StatusUpdater(stm.BalsamDBStatusUpdater):  # type: ignore[misc, valid-type]
        """Balsam's status updater waiting ``HPCNAS_STATUS_BATCH_S`` (not 1 s) to batch updates."""

        def run(self) -> None:
            stm.connections.close_all()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                updates = [self.queue.get(block=True, timeout=None)]
                deadline = time.monotonic() + batch_period
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        updates.append(self.queue.get(timeout=left))
                    except queue.Empty:
                        break
                self.perform_updates(updates)
                if "exit" in updates:
                    break
            self._on_exit()
            stm.logger.info("StatusUpdater thread finished.")

    stm.BalsamJobSource = JobSource
    stm.BalsamDBStatusUpdater = StatusUpdater
    stm.Worker = _worker_class(stm, stm.Worker, loop_period)
    stm._hpcnas_paced = True


#: Balsam's serial worker starts a job while its node's occupancy stays at most this
MAX_OCCUPANCY = 1.001


def jobs_to_request(prefetch_count: int, occupancy: float, cached: list[float], smallest_occ: float | None) -> int:
    """How many jobs a serial worker asks for: as many as fit beside what runs (``occupancy``)
    and what it holds already (``cached``: their occupancies), counting ``smallest_occ`` (the
    smallest occupancy ``1/node_packing_count`` it has seen) per job, at most
    ``prefetch_count - len(cached)``. Before it has seen a job it asks for one."""
    limit = max(0, int(prefetch_count) - len(cached))
    room = MAX_OCCUPANCY - occupancy - sum(cached)
    if room < 1e-6 or limit == 0:
        return 0
    if not smallest_occ or smallest_occ <= 0:
        return min(1, limit)
    return min(limit, int(room / smallest_occ + 1e-9))


def _worker_class(stm: Any, base: type, loop_period: float) -> type:
    class Worker(base):  # type: ignore[misc, valid-type]
        """Balsam's serial worker looping every ``HPCNAS_WORKER_S`` instead of every second,
        asking for the jobs its node has room for (:func:`jobs_to_request`)."""

        def main(self) -> None:
            stm.connections.close_all()
            self.socket.connect(self.master_address)
            smallest: float | None = None  # smallest occupancy of the jobs seen (1/packing)
            while True:
                done_pks, errors, active = self.poll_processes()
                started_pks = self.start_jobs()
                cached = [float(job["occ"]) for job in self.runnable_cache.values()]
                msg = {
                    "source": self.hostname, "started": started_pks, "done": done_pks, "error": errors,
                    "active": active,
                    "request_num_jobs": jobs_to_request(self.prefetch_count, self.occupancy, cached, smallest),
                }
                self.socket.send_json(msg)
                response = self.socket.recv_json()
                if response.get("new_jobs"):
                    self.runnable_cache.update({job["pk"]: job for job in response["new_jobs"]})
                    occs = [float(job["occ"]) for job in response["new_jobs"] if float(job["occ"]) > 0]
                    smallest = min([*occs, smallest or 1.0]) if occs else smallest
                if response.get("exit"):
                    stm.logger.info(f"Worker {self.hostname} received exit message: break")
                    self.exit()
                if self.EXIT_FLAG and self.master_subproc is not None:
                    stm.logger.info("Signal: forwarding SIGTERM to master subprocess.")
                    self.master_subproc.terminate()
                # new work (or a just-started job) is checked again at once; otherwise one period
                if not (response.get("new_jobs") and self.runnable_cache):
                    time.sleep(loop_period)

    return Worker
