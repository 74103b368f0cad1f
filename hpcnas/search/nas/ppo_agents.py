"""How PPO agents synchronise: one process (agents in it) or one agent per MPI rank.

The variant is DeepHyper's (Balaprakash et al. 2019, "Scalable reinforcement-learning-based neural
architecture search for cancer deep learning research"): *synchronous* PPO without a parameter
server. Every agent evaluates a batch of architectures with its own workers, waits for all of them,
then takes ``noptepochs x nminibatches`` optimiser steps; before each step the agents' gradients are
averaged (an MPI ``Allreduce``, weighted by the episodes of each agent's minibatch) and every agent
applies the same average to the same weights, so the policies stay identical.

Stopping never leaves an agent blocked: every exchange carries a *stop* flag. An agent that ends
(its ``--max-evals`` share, ``--timeout``, an error, a signal) takes part in exactly one more exchange
with the flag set; whoever sees it stops exchanging and asks for no more architectures.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hpcnas.core.errors import MissingExtraError
from hpcnas.core.mpi_env import launcher_size

#: variables set by mpirun / mpiexec (MPICH's Hydra, Open MPI, PMIx) in each rank's environment


class LocalComm:
    """One process: the agents in it average their gradients in memory."""

    rank, size = 0, 1

    def __init__(self) -> None:
        self.stopped = False

    def average(self, grad_sum: np.ndarray, weight: float) -> np.ndarray | None:
        return grad_sum / weight if weight > 0 else np.zeros_like(grad_sum)

    def stop(self) -> None:
        self.stopped = True

    def bcast(self, value: Any) -> Any:
        return value

    def barrier(self) -> None:
        pass


class MpiComm:
    """One agent per MPI rank of ``comm``."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.stopped = False  # a stop flag was exchanged: no more exchanges

    def _flags(self, flag: float, weight: float) -> np.ndarray:
        from mpi4py import MPI

        send, total = np.array([flag, weight], dtype=np.float64), np.empty(2)
        self.comm.Allreduce(send, total, op=MPI.SUM)
        return total

    def average(self, grad_sum: np.ndarray, weight: float) -> np.ndarray | None:
        """The average gradient over all agents, or ``None`` once an agent stopped.

        Two exchanges: the stop flag and the weights (a stopping agent takes part in this one
        only, it need not know the gradient's size), then the gradients, summed and broadcast
        from rank 0 so that every rank applies the same bits whatever the reduction order."""
        from mpi4py import MPI

        if self.stopped:
            return None
        flag, total_weight = self._flags(0.0, weight)
        if flag > 0:
            self.stopped = True
            return None
        total = np.empty_like(grad_sum, dtype=np.float64)
        self.comm.Allreduce(np.ascontiguousarray(grad_sum, dtype=np.float64), total, op=MPI.SUM)
        self.comm.Bcast(total, root=0)
        return total / total_weight if total_weight > 0 else np.zeros_like(total)

    def stop(self) -> None:
        """This agent ends: one exchange with the stop flag (unless an agent stopped already)."""
        if not self.stopped:
            self.stopped = True
            self._flags(1.0, 0.0)

    def bcast(self, value: Any) -> Any:
        return self.comm.bcast(value, root=0)

    def barrier(self) -> None:
        self.comm.Barrier()


def world() -> LocalComm | MpiComm:
    """:class:`MpiComm` of ``COMM_WORLD`` under mpirun with several ranks, else :class:`LocalComm`."""
    if launcher_size() <= 1:
        return LocalComm()
    try:
        from mpi4py import MPI
    except ImportError:
        raise MissingExtraError(
            "PPO runs one agent per MPI rank, but mpi4py is not installed: pip install 'hpcnas[mpi]' "
            "(or run without mpirun and give --num-agents N)"
        ) from None
    comm = MpiComm(MPI.COMM_WORLD)
    return comm if comm.size > 1 else LocalComm()
