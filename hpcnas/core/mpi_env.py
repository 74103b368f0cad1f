"""A process's MPI rank and world size as its launcher set them, read without initialising MPI.

``mpirun`` / ``mpiexec`` (MPICH's Hydra, Open MPI, MVAPICH), ``srun``, Cray's ``aprun`` and
PALS ``mpiexec`` (Polaris, Aurora) tell every process its rank in variables of their own.
This module is the one reader of them: the job runner (which rank reports), the decentralized
agents (``--agent-id`` from the rank), PPO's agents (how many ranks) and the MPI evaluator
(started by ``mpirun``?) all ask here, and the serial-mode ensemble strips exactly these from
the environment of the evaluations it starts (:data:`STEP_VARIABLES`, :data:`STEP_PREFIXES`).
It imports nothing but :mod:`os`: the job runner reads it before the run function starts.
"""
from __future__ import annotations

import os
from typing import Mapping

#: a process's rank, in the order read (the first one set to a number wins)
RANK_VARS = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PALS_RANKID",
             "SLURM_PROCID", "ALPS_APP_PE")
#: the number of ranks started together (a batch script's ``SLURM_NTASKS`` is not one: it is set
#: outside ``srun`` too)
SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
#: variables that make a process a task of a launch step (rank and wiring); with
#: :data:`STEP_PREFIXES`, what a process started by such a task must not inherit
STEP_VARIABLES = ("SLURM_PROCID", "SLURM_LOCALID", "ALPS_APP_PE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS")
STEP_PREFIXES = ("PMI_", "PMIX_", "OMPI_COMM_WORLD_", "MV2_COMM_WORLD_", "PALS_")


def launcher_rank(environ: Mapping[str, str] | None = None) -> int | None:
    """This process's rank from :data:`RANK_VARS`; ``None`` when no launcher numbered it."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    for name in RANK_VARS:
        value = env.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def launcher_size(environ: Mapping[str, str] | None = None) -> int:
    """The number of ranks started with this process (from :data:`SIZE_VARS`; 1 outside a launcher)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    for name in SIZE_VARS:
        value = env.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def without_step_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the launch step's rank and wiring (:data:`STEP_VARIABLES`, :data:`STEP_PREFIXES`)."""
    return {k: v for k, v in environ.items() if k not in STEP_VARIABLES and not k.startswith(STEP_PREFIXES)}
