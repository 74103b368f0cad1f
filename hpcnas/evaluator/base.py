"""The contract every evaluator backend implements (local, balsam, ray, simulated).

An evaluator owns a set of ``num_workers`` slots and runs the user's run function
(``run(config: dict) -> float``, referenced by dotted path so that other processes and
machines can import it) on configurations handed to :meth:`Evaluator.submit`.

* ``submit(configs)`` queues configurations and returns their job ids immediately. It never
  blocks on evaluations. Submitting more than ``num_free`` is allowed (the backend queues).
* ``gather(timeout)`` waits up to ``timeout`` seconds (``None``: until at least one is done,
  ``0``: poll) and returns every :class:`EvalResult` that finished since the last call.
* A crash, ``sys.exit``, signal, hang past ``eval_timeout``, or a return value that is not a
  finite number (NaN, inf, string, None) is an :class:`EvalResult` with ``status`` ``FAILED``
  or ``TIMEOUT``, ``objective=None`` and the error tail in ``error`` — never an exception in the
  master.
* ``recover()`` (resume) returns results of evaluations this backend finished in an earlier
  life of the same search (Balsam: jobs of the workflow in the DB) and adopts evaluations that are
  still pending, so they are neither lost nor run twice. Backends without persistent state
  return ``[]``.

Public methods validate and keep the bookkeeping; subclasses implement ``_submit``,
``_gather``, ``_close`` (and optionally ``_recover``). Backends register with
:func:`register_evaluator` and are built by :func:`create_evaluator` from options.
"""
from __future__ import annotations

import os
import time
import uuid
from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping

from hpcnas.core.errors import UsageError
from hpcnas.core.limits import check_num_workers, time_limit
from hpcnas.core.trial import (
    DONE, FAILED, METADATA_KEY, METADATA_PREFIX, PARAM_PREFIX, RESULT_COLUMNS, STATUSES, STOPPED, TIMEOUT, Config,
    EvalResult, Status,
)

# the trial's facts live in hpcnas.core.trial; importable from here as before
__all__ = [
    "DONE", "FAILED", "METADATA_KEY", "METADATA_PREFIX", "PARAM_PREFIX", "RESULT_COLUMNS", "STATUSES", "STOPPED",
    "TIMEOUT", "Config", "EvalResult", "Evaluator", "Status", "create_evaluator", "evaluator_names",
    "get_evaluator_class", "register_evaluator",
]


_REGISTRY: dict[str, type["Evaluator"]] = {}


def register_evaluator(name: str) -> Callable[[type["Evaluator"]], type["Evaluator"]]:
    def deco(cls: type[Evaluator]) -> type[Evaluator]:
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


_BUILTIN = {
    "local": "hpcnas.evaluator.local",
    "balsam": "hpcnas.balsam.evaluator",
    "ray": "hpcnas.evaluator.ray",
    "mpi": "hpcnas.evaluator.mpi",
    "simulated": "hpcnas.evaluator.simulated",
}


def evaluator_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def get_evaluator_class(name: str) -> type["Evaluator"]:
    if name not in _REGISTRY and name in _BUILTIN:
        import importlib

        importlib.import_module(_BUILTIN[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown evaluator '{name}': choose one of {', '.join(evaluator_names())}"
        ) from None


def create_evaluator(name: str, run_function: str | Callable[..., Any], **options: Any) -> "Evaluator":
    """Build the evaluator ``name``; unknown options are a :class:`UsageError`."""
    return get_evaluator_class(name)(run_function, **options)


class Evaluator(ABC):
    """Base class of evaluator backends (see the module docstring for the contract)."""

    name = "evaluator"
    #: whether this backend writes each evaluation's output to ``log_dir/<job_id>.log`` when the
    #: search master sets ``log_dir`` (:meth:`log_path`)
    keeps_logs = False
    log_dir: str | None = None
    #: environment variables the search's evaluations need (:meth:`use_evaluation_env`)
    evaluation_env: dict[str, str] = {}

    def __init__(
        self,
        run_function: str | Callable[..., Any],
        num_workers: int | None = None,
        eval_timeout: float | None = None,
    ) -> None:
        check_num_workers(num_workers)
        self.run_function = run_function
        self.eval_timeout = time_limit(eval_timeout, "--eval-timeout")  # None: no limit (also for inf)
        self._num_workers = num_workers or 1
        self._pending: dict[str, Config] = {}
        self._closed = False

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        """Add this backend's own options to an ``argparse`` parser (default: none).

        Each option's ``dest`` must be an ``__init__`` keyword argument: the CLI passes
        ``{dest: value}`` to :func:`create_evaluator` (``--output-tail`` -> ``output_tail=``).
        """

    @classmethod
    def serve(cls) -> int | None:
        """Where this backend's workers are other processes of the same command (``mpi``: ranks
        1..N-1 of ``mpirun -n N hpcnas ...``), run the worker side here and return its exit code;
        ``None`` in the process that runs the search (default: always)."""
        return None

    # ----------------------------------------------------------------- public API
    def use_evaluation_env(self, env: Mapping[str, str]) -> None:
        """Give every evaluation submitted from now on these environment variables (the search's
        :meth:`~hpcnas.search.base.Search.evaluation_env`; the search master calls this). Each
        backend carries them to its run side: the local worker's run message, the Ray task, the MPI
        ranks, the Balsam job's ``environ_vars``; the master's own environment is left alone."""
        self.evaluation_env = {str(k): str(v) for k, v in env.items()}

    def clock(self) -> float:
        """Current time in epoch seconds on this backend's clock (virtual for ``simulated``).

        The search master measures its ``timeout`` with it.
        """
        return time.time()

    def charge(self, cpu_seconds: float, wall_seconds: float) -> None:
        """The search master spent this time on its own work (ask, tell, writes) since its last
        report. A real clock has advanced by it already (no-op here); a virtual one advances
        (:class:`~hpcnas.evaluator.simulated.SimulatedEvaluator`)."""

    @property
    def num_workers(self) -> int:
        return self._num_workers

    @property
    def num_pending(self) -> int:
        return len(self._pending)

    #: evaluations a backend keeps queued beyond its workers, so that a worker that finishes
    #: starts the next one without waiting for the master (the local evaluator's ``--queue-ahead``)
    queue_ahead = 0

    @property
    def num_free(self) -> int:
        """Configurations the master may submit now: free workers plus :attr:`queue_ahead`."""
        return max(0, self.num_workers + self.queue_ahead - self.num_pending)

    def pending_configs(self) -> list[Config]:
        return list(self._pending.values())

    def submit(self, configs: list[Config]) -> list[str]:
        if self._closed:
            raise RuntimeError("evaluator is closed")
        if not configs:
            return []
        jobs = [(self.new_job_id(), dict(c)) for c in configs]
        now = time.time()
        self._submit(jobs, now)
        for job_id, config in jobs:
            self._pending[job_id] = config
        return [j for j, _ in jobs]

    def gather(self, timeout: float | None = None) -> list[EvalResult]:
        if not self._pending:
            return []
        results = self._gather(timeout)
        for r in results:
            self._pending.pop(r.job_id, None)
            if r.log is None and self.keeps_logs:
                path = self.log_path(r.job_id)
                r.log = path if path is not None and os.path.isfile(path) else None
        return results

    def recover(self) -> list[EvalResult]:
        """Finished results from an earlier life of this search; adopts still-pending jobs."""
        finished, pending = self._recover()
        for job_id, config in pending.items():
            self._pending[job_id] = config
        return finished

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def log_path(self, job_id: str) -> str | None:
        """The file for the output of evaluation ``job_id`` (``None``: no ``log_dir``)."""
        return None if self.log_dir is None else os.path.join(self.log_dir, f"{job_id}.log")

    def new_job_id(self) -> str:
        return uuid.uuid4().hex[:12]

    # ----------------------------------------------------------------- backend
    @abstractmethod
    def _submit(self, jobs: list[tuple[str, Config]], submit_time: float) -> None:
        """Start or queue each ``(job_id, config)``."""

    @abstractmethod
    def _gather(self, timeout: float | None) -> list[EvalResult]:
        """Return results finished since the last call, waiting as ``gather`` describes."""

    def _recover(self) -> tuple[list[EvalResult], dict[str, Config]]:
        return [], {}

    def _close(self) -> None:
        """Release workers, processes and connections."""
