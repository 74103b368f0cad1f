"""The ``local`` evaluator: a pool of worker processes on this machine (the default, no database).

Each of the ``num_workers`` slots owns one long-lived worker process, in its own session: a fork
of a zygote that imported the worker's modules once, or a fresh interpreter
(:mod:`~hpcnas.evaluator.local_spawn`). A worker imports the run
function once and then evaluates configurations one at a time with
:func:`hpcnas.evaluator.runner.run_config`, so the master's cost per evaluation is one
pickled message each way rather than a process start.

Isolation: an exception, ``sys.exit`` or a non-number return is judged inside the worker
(status ``FAILED``; the worker lives on). When the worker process itself dies (segfault,
``os._exit``, out-of-memory kill) the evaluation is ``FAILED`` with the exit code or signal,
and when it runs past ``eval_timeout`` its whole process group is killed and the evaluation is
``TIMEOUT``. In both cases the slot gets a new worker at its next evaluation (as it does after
``evals_per_worker`` evaluations, when that option is set, to release memory a run function
leaks).

Orphans: a worker dies with the master (Linux parent-death signal), and the processes a run
function starts (a training subprocess, ``mpirun``) are in the worker's process group, which a
watchdog process (:class:`~hpcnas.evaluator.reaper.Reaper`) kills when the master is gone,
even after ``kill -9`` of the master.

Output: while the search master has set ``log_dir`` (a search does: ``<output dir>/logs``), an
evaluation's stdout and stderr -- its prints, C code's, child processes', the full traceback of
an exception -- go to ``log_dir/<job_id>.log`` (its path in the result's ``log``). Outside
evaluations, or without ``log_dir``, a worker's output goes to a pipe that a master thread drains.
The last ``output_tail`` bytes of the running evaluation's output are attached to the error of a
crash or timeout. A run function printing gigabytes costs the master no memory, and its log
file keeps the first and last ``log_limit / 2`` bytes (64 MiB in all by default).

Workers see the master's ``sys.path`` and working directory, so a run function importable in
the master is importable in the workers without setting ``PYTHONPATH``. A run function that is
not importable by name (defined in the script being run, in a notebook, a lambda or closure)
is sent by value with ``cloudpickle``
(:func:`~hpcnas.evaluator.local_worker.pack_run_function`). With
``gpus_per_worker`` G, worker slot ``i`` sees only GPUs ``i*G .. i*G+G-1`` of those visible to
the master (``CUDA_VISIBLE_DEVICES``).
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection, Pipe, wait
from typing import Any, Callable

from hpcnas.core.errors import UsageError
from hpcnas.core.trial import Outcome
from hpcnas.evaluator.base import Config, EvalResult, Evaluator, register_evaluator
from hpcnas.evaluator.local_resources import check_open_files, gpu_slices, visible_gpus
from hpcnas.evaluator.local_spawn import OutputTail, WorkerSpawner
from hpcnas.evaluator.local_worker import pack_run_function
from hpcnas.evaluator.reaper import Reaper
from hpcnas.evaluator.runner import DEFAULT_LOG_LIMIT, file_tail, trim_log

__all__ = ["LocalEvaluator", "gpu_slices", "visible_gpus"]

#: bytes of a worker's output kept for the error text of a crash or timeout
DEFAULT_OUTPUT_TAIL = 2000
#: seconds a worker may take to start an evaluation (boot a fresh interpreter) beyond eval_timeout
STARTUP_GRACE = 60.0
#: by default one evaluation is queued ahead per this many workers: a worker that finishes takes
#: the next one at once instead of waiting for the master's tell and ask (a wait of 10-50 ms per
#: evaluation, benchmarks/local_overhead.py); below this many workers none is, so a sequential
#: search always asks knowing every result
QUEUE_AHEAD_SHARE = 8
#: longest single wait on the workers' pipes (poll() overflows past ~24.8 days); longer waits loop
MAX_WAIT = 3600.0


class _Worker:
    """One slot: a worker process, its message connection and the job it runs."""

    def __init__(
        self, slot: int, init_message: bytes, output_tail: int, reaper: Reaper, spawner: WorkerSpawner,
        gpus: list[str] | None = None,
    ) -> None:
        self.slot = slot
        self.reaper = reaper
        self.name = f"local-{slot}"
        parent_conn, child_conn = Pipe(duplex=True)
        out_read, out_write = os.pipe()
        env = dict(os.environ, HPCNAS_WORKER=self.name, PYTHONUNBUFFERED="1")
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        try:
            self.proc = spawner.start(env, child_conn.fileno(), out_write)
        finally:
            child_conn.close()
            os.close(out_write)
        reaper.add(self.proc.pid)  # its process group (start_new_session) dies with the master
        self.conn: Connection = parent_conn
        self.output = OutputTail(out_read, output_tail)
        self.conn.send_bytes(init_message)
        self.job: tuple[str, Config, float] | None = None  # (job_id, config, submit_time)
        self.evals = 0  # evaluations finished by this process
        self.started: float | None = None  # epoch time the worker reported the start
        self.eval_timeout: float | None = None
        self.deadline: float | None = None  # monotonic deadline of the running job
        self.log_path: str | None = None  # the running job's output file

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def start(self, job: tuple[str, Config, float], eval_timeout: float | None, log_path: str | None = None,
              env: dict[str, str] | None = None) -> None:
        self.output.reset()
        self.log_path = log_path
        self.job = job
        self.started = None
        # until the worker reports the start (a fresh interpreter may take a while to boot under
        # load), allow a grace period; then the timeout runs from the reported start
        self.eval_timeout = eval_timeout
        self.deadline = None if eval_timeout is None else time.monotonic() + eval_timeout + STARTUP_GRACE
        self.conn.send(("run", job[0], job[1], self.log_path, env))

    def mark_started(self, started: float) -> None:
        self.started = started
        if self.eval_timeout is not None:
            self.deadline = time.monotonic() - max(0.0, time.time() - started) + self.eval_timeout

    def signal(self, signum: int) -> None:
        """Signal the worker's whole process group (the run function's children too)."""
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        else:
            self.reaper.remove(self.proc.pid)
        self.conn.close()

    def stop(self) -> None:
        """Ask an idle worker to exit; kill it if it does not within a second."""
        try:
            self.conn.send(("stop",))
            self.proc.wait(1)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


@register_evaluator("local")
class LocalEvaluator(Evaluator):
    """Run evaluations in ``num_workers`` worker processes on this machine (see module docstring)."""

    keeps_logs = True

    def __init__(
        self,
        run_function: str | Callable[..., Any],
        num_workers: int | None = None,
        eval_timeout: float | None = None,
        output_tail: int = DEFAULT_OUTPUT_TAIL,
        evals_per_worker: int | None = None,
        gpus_per_worker: int = 0,
        log_limit: int = DEFAULT_LOG_LIMIT,
        queue_ahead: int | None = None,
    ) -> None:
        super().__init__(run_function, num_workers=num_workers, eval_timeout=eval_timeout)
        if queue_ahead is not None and (not isinstance(queue_ahead, int) or queue_ahead < 0):
            raise UsageError(f"--queue-ahead must be an integer >= 0, got {queue_ahead}")
        self.queue_ahead = self.num_workers // QUEUE_AHEAD_SHARE if queue_ahead is None else queue_ahead
        if log_limit < 0:
            raise UsageError(f"--log-limit must be >= 0 bytes, got {log_limit}")
        self._log_limit = log_limit
        check_open_files(self.num_workers)
        if output_tail < 0:
            raise UsageError(f"--output-tail must be >= 0 bytes, got {output_tail}")
        if evals_per_worker is not None and evals_per_worker < 1:
            raise UsageError(f"--evals-per-worker must be at least 1, got {evals_per_worker}")
        self._evals_per_worker = evals_per_worker
        self._gpus = gpu_slices(visible_gpus(), self.num_workers, gpus_per_worker) if gpus_per_worker else None
        reference, by_value = pack_run_function(run_function)
        self._init_message = pickle.dumps(("init", list(sys.path), os.getcwd(), reference, by_value))
        self._output_tail = max(1, output_tail)
        self._workers: list[_Worker | None] = [None] * self.num_workers
        self._queue: deque[tuple[str, Config, float]] = deque()
        self._reaper: Reaper | None = None  # started with the first worker
        self._spawner: WorkerSpawner | None = None  # its zygote too

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument(
            "--output-tail",
            type=int,
            default=DEFAULT_OUTPUT_TAIL,
            metavar="BYTES",
            help="bytes of a worker's output kept for the error of a crashed or timed-out evaluation "
            f"(default {DEFAULT_OUTPUT_TAIL}; the rest of the output is discarded)",
        )
        parser.add_argument(
            "--log-limit",
            type=int,
            default=DEFAULT_LOG_LIMIT,
            metavar="BYTES",
            help="an evaluation's log file larger than this keeps its first and last halves "
            f"(default {DEFAULT_LOG_LIMIT}; 0: no limit)",
        )
        parser.add_argument(
            "--gpus-per-worker",
            type=int,
            default=0,
            metavar="G",
            help="give each worker its own G GPUs through CUDA_VISIBLE_DEVICES (default 0: leave it alone)",
        )
        parser.add_argument(
            "--queue-ahead",
            type=int,
            metavar="Q",
            help="evaluations kept queued beyond the workers, handed to a worker the moment it is free "
            f"(default: workers // {QUEUE_AHEAD_SHARE}, so none below {QUEUE_AHEAD_SHARE} workers)",
        )
        parser.add_argument(
            "--evals-per-worker",
            type=int,
            metavar="N",
            help="replace a worker process after N evaluations (frees memory a run function leaks; "
            "default: never)",
        )

    # ----------------------------------------------------------------- backend
    def _submit(self, jobs: list[tuple[str, Config]], submit_time: float) -> None:
        self._queue.extend((job_id, config, submit_time) for job_id, config in jobs)
        self._dispatch()

    def _gather(self, timeout: float | None) -> list[EvalResult]:
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            self._dispatch()
            busy = [w for w in self._workers if w is not None and w.job is not None]
            if not busy:
                return []
            now = time.monotonic()
            waits = [w.deadline - now for w in busy if w.deadline is not None]
            if until is not None:
                waits.append(until - now)
            ready = wait([w.conn for w in busy], timeout=min(MAX_WAIT, max(0.0, min(waits))) if waits else None)
            results: list[EvalResult] = []
            for worker in busy:
                if worker.conn in ready:
                    result = self._receive(worker)
                    if result is not None:
                        results.append(result)
            results.extend(self._expire(busy))
            if results:
                self._dispatch()
                return results
            if until is not None and time.monotonic() >= until:
                return []

    def _close(self) -> None:
        """Ask idle workers to exit and kill busy ones, all at once; kill any straggler after 2 s."""
        self._queue.clear()
        workers = [w for w in self._workers if w is not None]
        self._workers = [None] * self.num_workers
        for worker in workers:
            if worker.job is None:
                try:
                    worker.conn.send(("stop",))
                except OSError:
                    pass
            else:
                worker.signal(signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        for worker in workers:
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            worker.kill()
        if self._spawner is not None:  # after the workers: they die with their zygote
            self._spawner.close()
            self._spawner = None
        if self._reaper is not None:
            self._reaper.close()
            self._reaper = None

    # ----------------------------------------------------------------- internals
    def _dispatch(self) -> None:
        """Start queued jobs on idle slots, (re)starting worker processes as needed."""
        for slot in range(self.num_workers):
            if not self._queue:
                return
            worker = self._workers[slot]
            if worker is not None and worker.job is not None:
                continue
            if worker is None or not worker.alive:
                if worker is not None:
                    worker.kill()
                gpus = self._gpus[slot] if self._gpus is not None else None
                if self._reaper is None:
                    self._reaper = Reaper()
                if self._spawner is None:
                    self._spawner = WorkerSpawner()
                worker = self._workers[slot] = _Worker(slot, self._init_message, self._output_tail, self._reaper,
                                                       self._spawner, gpus)
            job = self._queue.popleft()
            try:
                worker.start(job, self.eval_timeout, self.log_path(job[0]), self.evaluation_env)
            except OSError:  # died between the liveness check and the send
                worker.kill()
                self._workers[slot] = None
                self._queue.appendleft(job)

    def _receive(self, worker: _Worker) -> EvalResult | None:
        """Read the worker's messages; a finished job (or a dead worker) yields a result."""
        assert worker.job is not None
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "start" and message[1] == worker.job[0]:
                    worker.mark_started(message[2])
                elif message[0] == "done" and message[1] == worker.job[0]:
                    outcome = Outcome.from_wire(message[2])
                    job_id, config, submit_time = worker.job
                    worker.job = None
                    worker.evals += 1
                    trim_log(worker.log_path, self._log_limit)
                    if self._evals_per_worker is not None and worker.evals >= self._evals_per_worker:
                        worker.stop()
                        self._workers[worker.slot] = None
                    return EvalResult.from_outcome(job_id, config, outcome, submit_time=submit_time,
                                                   worker=worker.name, metadata={"pid": worker.proc.pid})
        except (EOFError, OSError):
            pass
        else:
            if worker.alive:
                return None
        try:
            code = worker.proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        return self._fail(worker, f"worker process {_describe_exit(code)} during the evaluation")

    def _expire(self, busy: list[_Worker]) -> list[EvalResult]:
        now = time.monotonic()
        expired = []
        for worker in busy:
            if worker.job is not None and worker.deadline is not None and now >= worker.deadline:
                expired.append(
                    self._fail(worker, f"evaluation exceeded --eval-timeout {self.eval_timeout:g} s and was killed",
                               timed_out=True)
                )
        return expired

    def _fail(self, worker: _Worker, reason: str, timed_out: bool = False) -> EvalResult:
        assert worker.job is not None
        job_id, config, submit_time = worker.job
        start = worker.started if worker.started is not None else submit_time
        pid = worker.proc.pid
        worker.kill()
        tail = (file_tail(worker.log_path, self._output_tail) or worker.output.text(settle=0.5)).strip()
        trim_log(worker.log_path, self._log_limit)
        error = reason + (f"; output tail: {tail[-400:]}" if tail else "")
        worker.job = None
        self._workers[worker.slot] = None
        outcome = Outcome.failure(error, start, time.time(), timed_out=timed_out)
        return EvalResult.from_outcome(job_id, config, outcome, submit_time=submit_time, worker=worker.name,
                                       metadata={"pid": pid})


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} (exit code {code})"
    return f"exited with code {code}"
