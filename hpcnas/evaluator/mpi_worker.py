"""The worker ranks of the ``mpi`` evaluator (ranks 1..N-1 of ``mpirun -n N``).

:func:`serve_rank` answers rank 0's messages until it says ``exit``:

* ``init`` (a new evaluator on rank 0): its run function (by reference, or by value with
  ``cloudpickle``), ``sys.path``, working directory and options;
* ``run``: a one-rank evaluation goes to a ``local`` evaluator of one slot on this rank (a worker
  process, so crashes and hangs stay there: :mod:`hpcnas.evaluator.local`); an evaluation of ``k``
  ranks runs here, in this process, with a communicator of its ``k`` ranks
  (``MPI_Comm_create_group``, collective over those ranks only);
* ``close``: kill that evaluator's worker process and answer ``closed``.

The rank never spins: between messages it sleeps (at most
:data:`~hpcnas.evaluator.mpi.MAX_BACKOFF`) or waits on its worker process.
"""
from __future__ import annotations

import inspect
import os
import socket
import time
from contextlib import contextmanager
from typing import Any, Iterator

from hpcnas.evaluator import mpi_comm as mpi
from hpcnas.evaluator.base import Config, EvalResult
from hpcnas.evaluator.local import LocalEvaluator
from hpcnas.core.trial import Outcome
from hpcnas.evaluator.runner import resolve_run_function, run_config

#: environment of the MPI launcher: a worker process must not see it (an ``import mpi4py`` there
#: would join this job as this rank again); it initialises a one-rank MPI of its own instead
LAUNCHER_ENV_PREFIXES = ("PMI_", "PMIX_", "HYDRA_", "MPI_LOCAL", "OMPI_", "MPIR_CVAR_CH3_INTERFACE")


class CommRun:
    """The run function as an evaluation of the ``mpi`` evaluator calls it: resolved on first use,
    given the evaluation's communicator as ``comm=`` when it takes one, and behind
    :func:`~hpcnas.evaluator.mpi.evaluation_comm` while it runs."""

    def __init__(self, reference: Any, by_value: bytes | None, comm: Any = None) -> None:
        self.reference = reference
        self.by_value = by_value
        self.comm = comm  # None: COMM_SELF, made only when the run function asks for it

    def __getstate__(self) -> dict[str, Any]:
        return {"reference": self.reference, "by_value": self.by_value, "comm": None}

    def function(self) -> Any:
        if self.by_value is not None:
            from hpcnas.evaluator.local_worker import _unpickle

            self.reference, self.by_value = _unpickle(self.by_value), None
        return resolve_run_function(self.reference)

    def __call__(self, config: Config) -> Any:
        func = self.function()
        saved, mpi._CURRENT = mpi._CURRENT, self.comm if self.comm is not None else mpi.LAZY_SELF
        try:
            if _takes_comm(func):
                return func(config, comm=mpi.evaluation_comm())
            return func(config)
        finally:
            mpi._CURRENT = saved


def _takes_comm(func: Any) -> bool:
    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return "comm" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


class _OneSlot(LocalEvaluator):
    """A local evaluator of one worker process whose job ids are rank 0's."""

    next_id: str | None = None

    def new_job_id(self) -> str:
        return self.next_id or super().new_job_id()


@contextmanager
def _without_launcher_env() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith(LAUNCHER_ENV_PREFIXES)}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


class _Evaluation:
    """What one rank-0 evaluator set up on this rank."""

    def __init__(self, message: tuple[Any, ...]) -> None:
        _, self.id, reference, by_value, path, cwd, self.eval_timeout, self.output_tail, self.log_limit = message
        import sys

        sys.path[:] = path + [p for p in sys.path if p not in path]
        if os.path.isdir(cwd):
            os.chdir(cwd)
        self.run = CommRun(reference, by_value)
        self.local: _OneSlot | None = None

    def submit_local(self, job_id: str, config: Config, log_path: str | None) -> None:
        with _without_launcher_env():
            if self.local is None:
                self.local = _OneSlot(self.run, num_workers=1, eval_timeout=self.eval_timeout,
                                      output_tail=self.output_tail, log_limit=self.log_limit)
            self.local.log_dir = os.path.dirname(log_path) if log_path else None
            self.local.next_id = job_id
            self.local.submit([config])

    def gather_local(self, timeout: float) -> list[EvalResult]:
        if self.local is None or not self.local.num_pending:
            return []
        with _without_launcher_env():
            return self.local.gather(timeout=timeout)

    def close(self) -> None:
        if self.local is not None:
            self.local.close()
            self.local = None


def _payload(result: EvalResult | Outcome) -> dict[str, Any]:
    """The wire form of what this rank found (:meth:`~hpcnas.core.trial.Outcome.to_wire`), with its
    host and process."""
    if isinstance(result, EvalResult):
        result = Outcome(result.objective, result.status, result.error, result.start_time, result.end_time,
                         result.metadata, result.reports)
    wire = result.to_wire()
    wire["metadata"] = {**wire["metadata"], "host": socket.gethostname()}
    wire["metadata"].setdefault("pid", os.getpid())
    return wire


class _Server:
    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.rank = comm.Get_rank()
        self.evaluations: dict[int, _Evaluation] = {}
        self.sends: list[Any] = []

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            request = self.comm.isend(message, dest=0, tag=mpi.TO_MASTER)
        except Exception as err:  # noqa: BLE001 - metadata that does not pickle
            kind, eid, rank, job_id, payload = message
            payload = {**payload, "metadata": {"metadata_dropped": f"not picklable: {err}"}}
            request = self.comm.isend((kind, eid, rank, job_id, payload), dest=0, tag=mpi.TO_MASTER)
        self.sends.append(request)
        self.sends = [r for r in self.sends if not r.Test()]

    def loop(self) -> int:
        backoff = 0.0005
        while True:
            got = False
            while self.comm.Iprobe(source=0, tag=mpi.TO_WORKER):
                got = True
                message = self.comm.recv(source=0, tag=mpi.TO_WORKER)
                if message[0] == "exit":
                    for evaluation in self.evaluations.values():
                        evaluation.close()
                    self.send(("bye", 0, self.rank))
                    for request in self.sends:
                        request.Wait()
                    return 0
                self.handle(message)
            waiting = [e for e in self.evaluations.values() if e.local is not None and e.local.num_pending]
            for evaluation in waiting:
                for result in evaluation.gather_local(MAX_WAIT / len(waiting)):
                    self.send(("done", evaluation.id, self.rank, result.job_id, _payload(result)))
            if waiting or got:
                backoff = 0.0005
            else:
                time.sleep(backoff)
                backoff = min(mpi.MAX_BACKOFF, backoff * 2)

    def handle(self, message: tuple[Any, ...]) -> None:
        kind, eid = message[0], message[1]
        if kind == "init":
            self.evaluations[eid] = _Evaluation(message)
        elif kind == "close":
            evaluation = self.evaluations.pop(eid, None)
            if evaluation is not None:
                evaluation.close()
            self.send(("closed", eid, self.rank))
        elif kind == "run":
            _, _, job_id, config, ranks, tag, log_path, env = message
            evaluation = self.evaluations.get(eid)
            if evaluation is None:
                return
            os.environ.update(env)
            if len(ranks) == 1:
                evaluation.submit_local(job_id, config, log_path)
            else:
                outcome = self.run_group(evaluation, config, ranks, tag, log_path, job_id)
                self.send(("done", eid, self.rank, job_id, _payload(outcome)))

    def run_group(self, evaluation: _Evaluation, config: Config, ranks: list[int], tag: int,
                  log_path: str | None, trial_id: str | None = None) -> Outcome:
        """Evaluate ``config`` here, with its other ranks, on a communicator of exactly ``ranks``."""
        group = self.comm.Get_group().Incl(ranks)
        try:
            sub = self.comm.Create_group(group, tag)
        finally:
            group.Free()
        try:
            run = CommRun(evaluation.run.reference, evaluation.run.by_value, comm=sub)
            # the group's first rank reports as the job; the others' reports stay trials of their own
            # (one trial fed by several ranks would see their steps interleave)
            outcome = run_config(run, config, log_path, trial_id=trial_id if self.rank == ranks[0] else None)
            evaluation.run.reference, evaluation.run.by_value = run.reference, run.by_value
            return outcome
        finally:
            sub.Free()


#: longest wait on this rank's worker processes before looking at MPI messages again
MAX_WAIT = 0.02


def serve_rank(comm: Any) -> int:
    """Serve rank 0 until it says ``exit``; returns the rank's exit code.

    Should this rank stop serving any other way (a signal reaching this rank only, a multi-rank
    run function raising ``KeyboardInterrupt``, a fault here), rank 0 would wait for it forever:
    it ends the whole MPI job with ``MPI_Abort`` instead, after one line saying why."""
    try:
        return _Server(comm).loop()
    except BaseException as err:  # noqa: BLE001 - whatever it is, the job must not hang
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        mpi.abort_job(comm, f"hpcnas: error: MPI rank {comm.Get_rank()} stopped serving evaluations ({reason}): "
                      "ending the MPI job (results.csv keeps the finished evaluations; run the same command to resume)")
        raise
