"""What both sides of the ``mpi`` evaluator share: ``mpi4py`` and the job's checks, the message
tags, rank 0's message hub, and the communicator of the running evaluation.

:mod:`hpcnas.evaluator.mpi` (the evaluator, on rank 0) and :mod:`hpcnas.evaluator.mpi_worker`
(ranks 1..N-1) use it; nothing here imports ``mpi4py`` before it is needed, so a worker process
importing it (a one-rank evaluation) does not join the MPI job.
"""
from __future__ import annotations

import atexit
import fcntl
import os
import stat
import sys
import termios
import time
from typing import Any

from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.core.loading import optional_import

#: message tags: rank 0 -> worker ranks, worker ranks -> rank 0
TO_WORKER, TO_MASTER = 71, 72
#: environment variables shipped to every evaluation (the multi-fidelity scheduler's address)
FORWARDED_ENV_PREFIXES = ("HPCNAS_MF_",)
#: seconds rank 0 waits at exit for the worker ranks to say goodbye before ``MPI_Abort``
SHUTDOWN_GRACE = 10.0
#: longest sleep between two polls of the MPI messages (the ranks never spin on a core)
MAX_BACKOFF = 0.005

#: longest wait at ``MPI_Abort`` for the MPI launcher to take this rank's last line off its stderr pipe
ABORT_DRAIN_S = 3.0
#: after that, time for the launcher to pass the line on before the abort ends it
ABORT_FORWARD_S = 0.5

#: the communicator of the evaluation running in this process (:func:`evaluation_comm`)
_CURRENT: Any = None
#: a one-rank evaluation's communicator, made on first use (``COMM_SELF`` of a worker process)
LAZY_SELF = "self"


def evaluation_comm() -> Any:
    """The ``mpi4py`` communicator of the running evaluation (``k`` ranks; one rank: ``COMM_SELF``).

    Call it from a run function (or code it calls) evaluated by the ``mpi`` evaluator; anywhere
    else it is an :class:`~hpcnas.core.errors.HpcnasError`."""
    if _CURRENT is None:
        raise HpcnasError("evaluation_comm() is only available inside an evaluation of --evaluator mpi")
    if _CURRENT == LAZY_SELF:
        return mpi_module().COMM_SELF
    return _CURRENT


def mpi_module() -> Any:
    """``mpi4py.MPI`` (initialises MPI), or a one-line error naming the install."""
    return optional_import("mpi4py.MPI", "mpi")


def world() -> Any:
    """``COMM_WORLD`` of a job of at least two ranks, or a one-line error saying how to start one."""
    comm = mpi_module().COMM_WORLD
    if comm.Get_size() < 2:
        raise UsageError(
            "--evaluator mpi needs worker ranks but this process is the only MPI rank: start the search "
            "with mpirun -n N (N >= 2: rank 0 searches, ranks 1..N-1 evaluate), or use --evaluator local"
        )
    return comm


def serve() -> int | None:
    """Rank 0: ``None`` (run the search here). Ranks 1..N-1: serve evaluations until rank 0 is done,
    then return the exit code (0)."""
    comm = world()
    if comm.Get_rank() == 0:
        hub()
        return None
    from hpcnas.evaluator.mpi_worker import serve_rank

    return serve_rank(comm)


class _Hub:
    """Rank 0's side of the job: sends, receives and routes messages for every open evaluator."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.size = comm.Get_size()
        self.sends: list[Any] = []
        self.evaluators: dict[int, Any] = {}  # id -> MPIEvaluator
        #: ranks still running work of a closed evaluator (free again once they say "closed")
        self.stray: set[int] = set()
        self.next_id = 0
        self.tag = 0
        self.closed = False
        atexit.register(self.shutdown)

    @property
    def worker_ranks(self) -> list[int]:
        return list(range(1, self.size))

    def busy_ranks(self) -> set[int]:
        """Worker ranks no evaluator may give a new evaluation now."""
        busy = set(self.stray)
        for evaluator in self.evaluators.values():
            busy |= evaluator.busy_ranks()
        return busy

    def send(self, rank: int, message: tuple[Any, ...]) -> None:
        self.sends.append(self.comm.isend(message, dest=rank, tag=TO_WORKER))
        self.sends = [r for r in self.sends if not r.Test()]

    def group_tag(self) -> int:
        self.tag = (self.tag + 1) % 30000
        return 100 + self.tag

    def deliver(self) -> bool:
        """Route every message that arrived; whether there was any."""
        MPI = mpi_module()
        status = MPI.Status()
        got = False
        while self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=TO_MASTER, status=status):
            message = self.comm.recv(source=status.Get_source(), tag=TO_MASTER)
            got = True
            kind, eid, rank = message[0], message[1], message[2]
            evaluator = self.evaluators.get(eid)
            if kind == "closed":
                self.stray.discard(rank)
            elif kind == "done" and evaluator is not None:
                evaluator._accept(rank, message[3], message[4])
        return got

    def shutdown(self) -> None:
        """At rank 0's exit: tell every worker rank to leave; ``MPI_Abort`` when one does not answer."""
        if self.closed:
            return
        self.closed = True
        MPI = mpi_module()
        if MPI.Is_finalized():
            return
        for rank in self.worker_ranks:
            self.send(rank, ("exit",))
        left = set(self.worker_ranks)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        status = MPI.Status()
        while left and time.monotonic() < deadline:
            if self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=TO_MASTER, status=status):
                message = self.comm.recv(source=status.Get_source(), tag=TO_MASTER)
                if message[0] == "bye":
                    left.discard(message[2])
            else:
                time.sleep(0.005)
        if left:
            abort_job(self.comm, f"hpcnas: note: MPI rank(s) {', '.join(map(str, sorted(left)))} still run an "
                      f"evaluation after {SHUTDOWN_GRACE:g} s (a timed-out multi-rank evaluation): ending the MPI "
                      "job with MPI_Abort (results.csv is complete)")
        for request in self.sends:
            request.Wait()


def _unread(fd: int) -> int:
    """Bytes written to pipe ``fd`` that its reader has not taken yet (0 when ``fd`` is not a pipe)."""
    try:
        buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int.from_bytes(buf, sys.byteorder)


def abort_job(comm: Any, line: str) -> None:
    """Print ``line`` on stderr, then end the whole MPI job with ``MPI_Abort(1)``.

    The launcher (Hydra's proxy, Open MPI's orted) reads a rank's stderr through a pipe and stops
    reading once the abort reaches it, so a line printed just before ``MPI_Abort`` can be lost: wait
    (at most :data:`ABORT_DRAIN_S`) until the pipe is empty and give the launcher
    :data:`ABORT_FORWARD_S` to pass the line on."""
    print(line, file=sys.stderr, flush=True)
    try:
        fd = sys.stderr.fileno()
        to_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (AttributeError, OSError, ValueError):
        fd, to_pipe = -1, False
    if to_pipe:
        deadline = time.monotonic() + ABORT_DRAIN_S
        while _unread(fd) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(ABORT_FORWARD_S)
    comm.Abort(1)


_HUB: _Hub | None = None


def hub() -> _Hub:
    global _HUB
    if _HUB is None:
        comm = world()
        if comm.Get_rank() != 0:
            raise UsageError(
                f"the mpi evaluator runs on rank 0 only; this is rank {comm.Get_rank()}: call "
                "hpcnas.evaluator.mpi.serve() first on every rank and search only where it returns None"
            )
        _HUB = _Hub(comm)
    return _HUB


