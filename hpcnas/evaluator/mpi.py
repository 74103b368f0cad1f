"""The ``mpi`` evaluator: one MPI job, the search on rank 0, evaluations on ranks 1..N-1 (no database).

``mpirun -n N python -m hpcnas.cli.main hps ambs --evaluator mpi ...`` starts the same command on
``N`` ranks; rank 0 runs the search and this evaluator, the other ranks serve evaluations
(:func:`serve`, :mod:`hpcnas.evaluator.mpi_worker`) until rank 0 is done. This is DeepHyper 0.13's
``mpicomm`` layout (``MPICommExecutor``: the root runs the search, the other ranks are workers),
with hpcnas's own point-to-point messages instead of ``mpi4py.futures``, because a future runs on
one arbitrary worker and cannot be killed: an evaluation here may need several ranks at once, and a
crash or hang of a one-rank evaluation must not take its rank down.

* An evaluation asks for ``k`` ranks: ``--ranks-per-eval K`` for all (default 1), or per
  configuration with ``--resources pkg.mod.func`` returning ``{"num_ranks": k}`` (``{}``: the
  default). Its ranks get a communicator of exactly those ``k`` ranks (``MPI_Comm_create_group``):
  a run function ``def run(config, comm=None)`` receives it as ``comm`` (``None`` with the other
  evaluators), and :func:`evaluation_comm` returns it anywhere in the evaluation.
* ``num_workers`` (evaluations at once) defaults to ``(N - 1) // ranks_per_eval``; the ranks of a
  new evaluation are the lowest free ones; evaluations start in submission order.
* One-rank evaluations run in a worker process of their rank (a ``local`` evaluator of one slot
  there), with ``COMM_SELF`` as their communicator: an exception, ``os._exit``, a segfault or a
  non-number is a ``FAILED`` result, a hang past ``--eval-timeout`` is killed (``TIMEOUT``), and
  the rank goes on serving, as with ``--evaluator local``.
* Multi-rank evaluations run inside their ranks (an MPI communicator cannot cross into a child
  process): an exception or non-number is ``FAILED`` as usual, but a hard crash (``os._exit``,
  segfault, kill) ends the whole MPI job (``mpirun`` kills every rank, within a second with MPICH),
  and a hang past ``--eval-timeout`` is a ``TIMEOUT`` result whose ranks are set aside until it
  returns. When nothing runs and the next evaluation waits for ranks set aside longer than
  :data:`STALL_GRACE` (or ``--eval-timeout``), or when rank 0 ends while ranks are still set
  aside, rank 0 ends the job with ``MPI_Abort`` (resume it with the same command).
* A rank that dies (killed, out of memory) ends the MPI job: ``mpirun`` kills the others, rank 0
  included, and exits non-zero; the search never hangs. ``results.csv`` keeps every evaluation
  finished until then, and the same command resumes the search from it. A worker rank that stops
  serving without dying ends the job with ``MPI_Abort`` (:func:`~hpcnas.evaluator.mpi_worker.serve_rank`). This evaluator keeps no
  state of its own (:meth:`~hpcnas.evaluator.base.Evaluator.recover` returns ``[]``).
* ``hpcnas hps ... --evaluator mpi`` without ``mpirun``, with ``mpirun -n 1``, or without
  ``mpi4py`` is a one-line error (exit code 2).

Python scripts run on every rank too: ``if serve() is None:`` (rank 0) run the search there with
``evaluator="mpi"``; the other ranks return from :func:`serve` when rank 0 is done.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from hpcnas.core.errors import UsageError
from hpcnas.core.loading import load_attribute
from hpcnas.core.trial import DONE, Outcome
from hpcnas.evaluator.base import Config, EvalResult, Evaluator, register_evaluator
from hpcnas.evaluator.local import DEFAULT_OUTPUT_TAIL
from hpcnas.evaluator import mpi_comm
from hpcnas.core.mpi_env import launcher_rank
from hpcnas.evaluator.mpi_comm import FORWARDED_ENV_PREFIXES, MAX_BACKOFF, evaluation_comm, serve
from hpcnas.evaluator.runner import DEFAULT_LOG_LIMIT

__all__ = ["MPIEvaluator", "evaluation_comm", "launcher_rank", "serve"]

log = logging.getLogger(__name__)

#: seconds (at least ``--eval-timeout``) rank 0 waits, with nothing running, for ranks set aside
#: by a timed-out multi-rank evaluation before it ends the job (:meth:`MPIEvaluator._check_stall`)
STALL_GRACE = 10.0



@dataclass
class _Running:
    config: Config
    submit_time: float
    ranks: list[int]
    dispatched: float
    deadline: float | None
    outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)


@register_evaluator("mpi")
class MPIEvaluator(Evaluator):
    """Evaluate configurations on the ranks of this MPI job (see the module docstring)."""

    keeps_logs = True

    def __init__(
        self,
        run_function: str | Callable[..., Any],
        num_workers: int | None = None,
        eval_timeout: float | None = None,
        ranks_per_eval: int = 1,
        resources: str | Callable[[Config], dict[str, int]] | None = None,
        output_tail: int = DEFAULT_OUTPUT_TAIL,
        log_limit: int = DEFAULT_LOG_LIMIT,
    ) -> None:
        from hpcnas.evaluator.local_worker import pack_run_function

        if ranks_per_eval < 1:
            raise UsageError(f"--ranks-per-eval must be at least 1, got {ranks_per_eval}")
        if output_tail < 0 or log_limit < 0:
            raise UsageError("--output-tail and --log-limit must be >= 0 bytes")
        hub = mpi_comm.hub()
        ranks = len(hub.worker_ranks)
        if ranks_per_eval > ranks:
            raise UsageError(
                f"--ranks-per-eval {ranks_per_eval} needs {ranks_per_eval} worker ranks but mpirun -n "
                f"{hub.size} gives {ranks} (rank 0 runs the search): run mpirun -n {ranks_per_eval + 1} or more"
            )
        if num_workers is not None and num_workers * ranks_per_eval > ranks:
            raise UsageError(
                f"--num-workers {num_workers} x --ranks-per-eval {ranks_per_eval} needs "
                f"{num_workers * ranks_per_eval} worker ranks but mpirun -n {hub.size} gives {ranks}: "
                f"run mpirun -n {num_workers * ranks_per_eval + 1}, or lower --num-workers"
            )
        super().__init__(run_function, num_workers=num_workers or ranks // ranks_per_eval, eval_timeout=eval_timeout)
        self.ranks_per_eval = ranks_per_eval
        self.worker_arithmetic = (f"mpirun -n {hub.size}: rank 0 searches, {ranks} worker ranks / "
                                  f"{ranks_per_eval} per evaluation = {ranks // ranks_per_eval}")
        log.info("mpi evaluator: %s; using %d workers", self.worker_arithmetic, self.num_workers)
        self._resources = _resource_function(resources)
        self._hub = hub
        self._id = hub.next_id = hub.next_id + 1
        hub.evaluators[self._id] = self
        reference, by_value = pack_run_function(run_function)
        init = ("init", self._id, reference, by_value, list(sys.path), os.getcwd(), self.eval_timeout,
                output_tail, log_limit)
        for rank in hub.worker_ranks:
            hub.send(rank, init)
        self._queue: deque[tuple[str, Config, float]] = deque()
        self._running: dict[str, _Running] = {}
        self._ready: list[EvalResult] = []
        #: rank -> job id of a timed-out multi-rank evaluation it still runs
        self._aside: dict[int, str] = {}
        #: since when (monotonic) nothing runs and the next evaluation waits for ranks set aside
        self._stalled_since: float | None = None

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument("--ranks-per-eval", dest="ranks_per_eval", type=int, default=1, metavar="K",
                            help="MPI ranks of each evaluation; its run function gets their communicator as "
                            "comm= (default 1)")
        parser.add_argument("--resources", metavar="PATH",
                            help="dotted path of resources(config) -> {'num_ranks': k}: ranks per configuration")
        parser.add_argument("--output-tail", dest="output_tail", type=int, default=DEFAULT_OUTPUT_TAIL,
                            metavar="BYTES", help="bytes of output kept for the error of a crashed or timed-out "
                            f"one-rank evaluation (default {DEFAULT_OUTPUT_TAIL})")
        parser.add_argument("--log-limit", dest="log_limit", type=int, default=DEFAULT_LOG_LIMIT, metavar="BYTES",
                            help=f"trim an evaluation's log file larger than this (default {DEFAULT_LOG_LIMIT}; 0: none)")

    @classmethod
    def serve(cls) -> int | None:
        return serve()

    def busy_ranks(self) -> set[int]:
        """Ranks running (or set aside by) this evaluator's evaluations."""
        return {r for run in self._running.values() for r in run.ranks} | set(self._aside)

    # ----------------------------------------------------------------- backend
    def _submit(self, jobs: list[tuple[str, Config]], submit_time: float) -> None:
        self._queue.extend((job_id, config, submit_time) for job_id, config in jobs)
        self._dispatch()

    def _ranks_for(self, config: Config) -> int:
        if self._resources is None:
            return self.ranks_per_eval
        asked = self._resources(dict(config)) or {}
        unknown = set(asked) - {"num_ranks"}
        if unknown:
            raise UsageError(f"resources(config) returned unknown key(s) {sorted(unknown)}: use num_ranks")
        value = asked.get("num_ranks", self.ranks_per_eval)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"resources(config) returned num_ranks={value!r}: give an integer >= 1")
        return value

    def _dispatch(self) -> None:
        hub = self._hub
        while self._queue and len(self._running) < self.num_workers:
            job_id, config, submit_time = self._queue[0]
            try:
                k = self._ranks_for(config)
            except Exception as err:  # noqa: BLE001 - the user's resources function
                self._queue.popleft()
                self._ready.append(self._failed(job_id, config, submit_time, f"resources(config) failed: {err}"))
                continue
            if k > len(hub.worker_ranks):
                self._queue.popleft()
                self._ready.append(self._failed(
                    job_id, config, submit_time,
                    f"the evaluation asks for {k} MPI ranks but mpirun -n {hub.size} has "
                    f"{len(hub.worker_ranks)} worker ranks: run mpirun -n {k + 1} or more"))
                continue
            busy = hub.busy_ranks()
            free = [r for r in hub.worker_ranks if r not in busy]
            if len(free) < k:
                return
            self._queue.popleft()
            ranks = free[:k]
            env = {**{key: v for key, v in os.environ.items() if key.startswith(FORWARDED_ENV_PREFIXES)},
                   **self.evaluation_env}
            tag = hub.group_tag() if k > 1 else 0
            for rank in ranks:
                hub.send(rank, ("run", self._id, job_id, config, ranks, tag, self.log_path(job_id), env))
            deadline = None if self.eval_timeout is None or k == 1 else time.monotonic() + self.eval_timeout
            self._running[job_id] = _Running(config, submit_time, ranks, time.time(), deadline)

    def _accept(self, rank: int, job_id: str, outcome: dict[str, Any]) -> None:
        """A rank finished its part of ``job_id`` (called by the hub)."""
        run = self._running.get(job_id)
        if run is None:
            if self._aside.get(rank) == job_id:
                del self._aside[rank]
            return
        run.outcomes[rank] = outcome
        # a rank that failed fails the evaluation at once: its other ranks may wait for it forever
        # (a collective it never joins); they are set aside until they return
        if len(run.outcomes) == len(run.ranks) or outcome["status"] != DONE:
            del self._running[job_id]
            for other in run.ranks:
                if other not in run.outcomes:
                    self._aside[other] = job_id
            self._ready.append(self._result(job_id, run))

    def _result(self, job_id: str, run: _Running) -> EvalResult:
        """The evaluation's result: its first rank's, unless another of its ranks failed."""
        lead = run.outcomes.get(run.ranks[0])
        bad = next(((r, o) for r, o in run.outcomes.items() if o["status"] != DONE), None)
        if lead is not None and (lead["status"] != DONE or bad is None):
            outcome = Outcome.from_wire(lead)
        else:
            assert bad is not None
            rank, base = bad
            outcome = Outcome.from_wire(base)
            outcome.objective, outcome.error = None, f"rank {rank} of the evaluation: {base['error']}"
        result = EvalResult.from_outcome(job_id, run.config, outcome, submit_time=run.submit_time,
                                         worker=_worker_name(run.ranks))
        result.metadata["ranks"] = run.ranks
        return result

    def _failed(self, job_id: str, config: Config, submit_time: float, error: str) -> EvalResult:
        now = time.time()
        return EvalResult.from_outcome(job_id, config, Outcome.failure(error, now, now), submit_time=submit_time,
                                       worker="mpi")

    def _expire(self) -> None:
        now = time.monotonic()
        for job_id, run in list(self._running.items()):
            if run.deadline is not None and now >= run.deadline:
                del self._running[job_id]
                for rank in run.ranks:
                    if rank not in run.outcomes:
                        self._aside[rank] = job_id
                error = (f"evaluation on MPI ranks {_worker_name(run.ranks)[5:]} exceeded --eval-timeout "
                         f"{self.eval_timeout:g} s; a multi-rank evaluation cannot be killed: its ranks are set "
                         "aside until it returns")
                outcome = Outcome.failure(error, run.dispatched, time.time(), timed_out=True)
                self._ready.append(EvalResult.from_outcome(job_id, run.config, outcome, submit_time=run.submit_time,
                                                           worker=_worker_name(run.ranks),
                                                           metadata={"ranks": run.ranks}))

    def _check_stall(self) -> None:
        """Nothing runs and the next evaluation waits for ranks set aside (a hung multi-rank
        evaluation) for longer than :data:`STALL_GRACE` (or ``--eval-timeout``): end the job
        (a fresh one resumes with all its ranks) rather than wait for them forever."""
        if self._running or not self._queue or not self._aside:
            self._stalled_since = None
            return
        now = time.monotonic()
        if self._stalled_since is None:
            self._stalled_since = now
        if now - self._stalled_since >= max(STALL_GRACE, self.eval_timeout or 0.0):
            ranks = ", ".join(map(str, sorted(self._aside)))
            mpi_comm.abort_job(self._hub.comm, f"hpcnas: error: MPI rank(s) {ranks} still run a timed-out evaluation "
                               f"and no evaluation can start without them for {now - self._stalled_since:.0f} s: "
                               "ending the MPI job (results.csv keeps the finished evaluations; run the same "
                               "command to resume)")

    def _gather(self, timeout: float | None) -> list[EvalResult]:
        until = None if timeout is None else time.monotonic() + timeout
        backoff = 0.0005
        while True:
            got = self._hub.deliver()
            self._expire()
            self._dispatch()
            self._check_stall()
            if self._ready:
                results, self._ready = self._ready, []
                return results
            if not self._running and not self._queue:
                return []
            now = time.monotonic()
            if until is not None and now >= until:
                return []
            backoff = 0.0005 if got else min(MAX_BACKOFF, backoff * 2)
            waits = [backoff] + [r.deadline - now for r in self._running.values() if r.deadline is not None]
            if until is not None:
                waits.append(until - now)
            time.sleep(max(0.0, min(waits)))

    def _close(self) -> None:
        hub = self._hub
        self._queue.clear()
        for run in self._running.values():
            hub.stray.update(run.ranks)
        hub.stray.update(self._aside)
        self._running.clear()
        self._aside.clear()
        hub.evaluators.pop(self._id, None)
        if not hub.closed:
            for rank in hub.worker_ranks:
                hub.send(rank, ("close", self._id))


def _worker_name(ranks: list[int]) -> str:
    return "rank-" + "+".join(map(str, ranks))


def _resource_function(resources: str | Callable[[Config], dict[str, int]] | None) -> Callable[..., Any] | None:
    if isinstance(resources, str):
        resources = load_attribute(resources, "resources function")
    if resources is not None and not callable(resources):
        raise UsageError("--resources must name a function resources(config) -> {'num_ranks': k}")
    return resources
