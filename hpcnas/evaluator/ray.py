"""The ``ray`` evaluator: each evaluation is a Ray task with its own CPUs and GPUs.

``--ray-address auto|HOST:PORT`` connects to a running cluster (``ray start --head`` on the
first node, ``ray start --address`` on the others, as ``hpcnas ray-submit`` scripts do);
without it a private local Ray is started with ``--ray-num-cpus`` CPUs (default: all) and
shut down at ``close()``. When Ray is already initialised in this process it is reused and
left running.

* Every evaluation is one task of ``run_config`` with ``num_cpus=--num-cpus-per-task`` and
  ``num_gpus=--num-gpus-per-task`` (Ray sets ``CUDA_VISIBLE_DEVICES`` for it), no retries.
* ``num_workers`` defaults to what the cluster holds: ``floor(CPU / cpus_per_task)``, and
  ``floor(GPU / gpus_per_task)`` when GPUs are asked for; the arithmetic is logged. The
  evaluator never has more than ``num_workers`` tasks in flight (the rest wait in its own
  queue), so ``--eval-timeout`` counts from the task's dispatch.
* An exception, ``sys.exit`` or non-number return is judged inside the task (``FAILED``); a
  dead worker process (``os._exit``, segfault, OOM kill) is ``FAILED`` with Ray's message; a
  task past ``--eval-timeout`` is cancelled with ``ray.cancel(force=True)`` (its worker process
  is killed) and is ``TIMEOUT``.
* A task's stdout and stderr go to ``<output dir>/logs/<job_id>.log`` when its node sees the
  output directory (shared file systems), else to Ray's worker logs as before.
* Tasks get the driver's ``sys.path`` and working directory (shared file systems), and the
  multi-fidelity scheduler's address (``HPCNAS_MF_*``), so ``hpcnas.report`` works in them.
* Ray 2.5x+ clusters started with ``ray start`` use token authentication; when connecting by
  address the driver sets ``RAY_AUTH_MODE=token`` unless it is set already. An address that
  does not answer is reported in a few seconds instead of Ray's long retry loop.
"""
from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from collections import deque
from typing import Any, Callable

from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.core.loading import optional_import
from hpcnas.core.trial import Outcome
from hpcnas.evaluator.base import Config, EvalResult, Evaluator, register_evaluator

log = logging.getLogger(__name__)

#: environment variables shipped to every task
FORWARDED_ENV_PREFIXES = ("HPCNAS_MF_",)


def _ray_task(
    run_function: Any, config: Config, env: dict[str, str], path: list[str], cwd: str, log_path: str | None = None,
    trial_id: str | None = None,
) -> Any:
    """Body of every Ray task: evaluate ``config`` with the runner in the worker process."""
    for entry in reversed(path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if os.path.isdir(cwd):
        os.chdir(cwd)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from hpcnas.evaluator.runner import run_config

        outcome = run_config(run_function, config, log_path, trial_id=trial_id)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    outcome.metadata = {**outcome.metadata, "host": socket.gethostname(), "pid": os.getpid()}
    return outcome.to_wire()


@register_evaluator("ray")
class RayEvaluator(Evaluator):
    """Evaluate configurations as Ray tasks (see the module docstring)."""

    keeps_logs = True

    def __init__(
        self,
        run_function: str | Callable[..., Any],
        num_workers: int | None = None,
        eval_timeout: float | None = None,
        ray_address: str | None = None,
        num_cpus_per_task: float = 1,
        num_gpus_per_task: float = 0,
        ray_num_cpus: int | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        if not num_cpus_per_task > 0:
            raise UsageError(f"--num-cpus-per-task must be positive, got {num_cpus_per_task}")
        if num_gpus_per_task < 0:
            raise UsageError(f"--num-gpus-per-task must be >= 0, got {num_gpus_per_task}")
        if ray_num_cpus is not None and ray_num_cpus < 1:
            raise UsageError(f"--ray-num-cpus must be at least 1, got {ray_num_cpus}")
        super().__init__(run_function, num_workers=num_workers, eval_timeout=eval_timeout)
        self.ray = optional_import("ray", "ray")
        self.ray_address = ray_address
        self.num_cpus_per_task = num_cpus_per_task
        self.num_gpus_per_task = num_gpus_per_task
        self._started_ray = self._connect(ray_address, ray_num_cpus, connect_timeout)
        try:
            inferred, self.worker_arithmetic = self._infer_workers()
            self._num_workers = num_workers or inferred
            log.info("ray evaluator: %s; using %d workers", self.worker_arithmetic, self._num_workers)
            if self._num_workers > inferred:
                log.warning(
                    "ray evaluator: --num-workers %d exceeds what the cluster runs at once (%d): the extra "
                    "tasks wait in Ray's queue and their --eval-timeout already counts", self._num_workers, inferred,
                )
            self._task = self.ray.remote(_ray_task).options(
                num_cpus=num_cpus_per_task, num_gpus=num_gpus_per_task, max_retries=0
            )
        except BaseException:
            self._shutdown()
            raise
        self._queue: deque[tuple[str, Config, float]] = deque()
        #: object ref -> (job_id, config, submit_time, dispatch epoch time, monotonic deadline)
        self._running: dict[Any, tuple[str, Config, float, float, float | None]] = {}
        #: object ref -> worker slot (``ray-<slot>`` in results)
        self._slots: dict[Any, int] = {}

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument("--ray-address", dest="ray_address", metavar="auto|HOST:PORT",
                            help="Ray cluster to use (default: start a local Ray for this search)")
        parser.add_argument("--num-cpus-per-task", dest="num_cpus_per_task", type=float, default=1, metavar="C",
                            help="CPUs reserved by each evaluation (default 1)")
        parser.add_argument("--num-gpus-per-task", dest="num_gpus_per_task", type=float, default=0, metavar="G",
                            help="GPUs reserved by each evaluation (default 0)")
        parser.add_argument("--ray-num-cpus", dest="ray_num_cpus", type=int, metavar="N",
                            help="CPUs of the local Ray started without --ray-address (default: all)")

    # ----------------------------------------------------------------- setup
    def _connect(self, address: str | None, num_cpus: int | None, connect_timeout: float) -> bool:
        ray = self.ray
        if ray.is_initialized():
            return False
        options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        if address:
            if address != "auto":
                _check_reachable(address, connect_timeout)
            os.environ.setdefault("RAY_AUTH_MODE", "token")
            options["address"] = address
        else:
            options["num_cpus"] = num_cpus
        try:
            ray.init(**options)
        except Exception as err:  # noqa: BLE001 - ConnectionError, RuntimeError, auth errors
            where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
            raise HpcnasError(
                f"cannot connect to {where}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} "
                "(start one with 'ray start --head', check --ray-address, or leave it out to start a local Ray)"
            ) from err
        return True

    def _infer_workers(self) -> tuple[int, str]:
        resources = self.ray.cluster_resources()
        cpus = float(resources.get("CPU", 0))
        gpus = float(resources.get("GPU", 0))
        by_cpu = math.floor(cpus / self.num_cpus_per_task + 1e-9)
        text = f"cluster {cpus:g} CPU / {self.num_cpus_per_task:g} per task = {by_cpu}"
        workers = by_cpu
        if self.num_gpus_per_task > 0:
            by_gpu = math.floor(gpus / self.num_gpus_per_task + 1e-9)
            text += f", {gpus:g} GPU / {self.num_gpus_per_task:g} per task = {by_gpu}"
            workers = min(workers, by_gpu)
        if workers < 1:
            raise UsageError(
                f"the Ray cluster cannot run one evaluation: {text}; lower --num-cpus-per-task / "
                "--num-gpus-per-task or add nodes"
            )
        return workers, text

    # ----------------------------------------------------------------- backend
    def _submit(self, jobs: list[tuple[str, Config]], submit_time: float) -> None:
        self._queue.extend((job_id, config, submit_time) for job_id, config in jobs)
        self._dispatch()

    def _dispatch(self) -> None:
        env = {**{k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}, **self.evaluation_env}
        path = [p for p in sys.path if p and os.path.isdir(p)]
        while self._queue and len(self._running) < self.num_workers:
            job_id, config, submit_time = self._queue.popleft()
            ref = self._task.remote(self.run_function, config, env, path, os.getcwd(), self.log_path(job_id), job_id)
            deadline = None if self.eval_timeout is None else time.monotonic() + self.eval_timeout
            self._running[ref] = (job_id, config, submit_time, time.time(), deadline)
            used = set(self._slots.values())
            self._slots[ref] = next(i for i in range(self.num_workers + 1) if i not in used)

    def _gather(self, timeout: float | None) -> list[EvalResult]:
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            self._dispatch()
            if not self._running:
                return []
            now = time.monotonic()
            waits = [d - now for *_, d in self._running.values() if d is not None]
            if until is not None:
                waits.append(until - now)
            wait_for = max(0.0, min(waits)) if waits else None
            refs = list(self._running)
            ready, _ = self.ray.wait(refs, num_returns=1, timeout=wait_for)
            if ready:
                ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
            results = [self._collect(ref) for ref in ready]
            results.extend(self._expire())
            if results:
                self._dispatch()
                return results
            if until is not None and time.monotonic() >= until:
                return []

    def _collect(self, ref: Any) -> EvalResult:
        job_id, config, submit_time, dispatched, _ = self._running.pop(ref)
        worker = f"ray-{self._slots.pop(ref, 0)}"
        try:
            wire = self.ray.get(ref)
        except Exception as err:  # noqa: BLE001 - WorkerCrashedError, RayTaskError, ...
            message = str(err).strip().splitlines()
            error = f"Ray task failed: {type(err).__name__}: {' '.join(message)[:400]}"
            return EvalResult.from_outcome(job_id, config, Outcome.failure(error, dispatched, time.time()),
                                           submit_time=submit_time, worker=worker)
        return EvalResult.from_outcome(job_id, config, Outcome.from_wire(wire), submit_time=submit_time, worker=worker)

    def _expire(self) -> list[EvalResult]:
        now = time.monotonic()
        expired = []
        for ref, (job_id, config, submit_time, dispatched, deadline) in list(self._running.items()):
            if deadline is not None and now >= deadline:
                del self._running[ref]
                worker = f"ray-{self._slots.pop(ref, 0)}"
                self.ray.cancel(ref, force=True)
                error = f"evaluation exceeded --eval-timeout {self.eval_timeout:g} s; its Ray task was cancelled"
                outcome = Outcome.failure(error, dispatched, time.time(), timed_out=True)
                expired.append(EvalResult.from_outcome(job_id, config, outcome, submit_time=submit_time,
                                                       worker=worker))
        return expired

    def _close(self) -> None:
        self._queue.clear()
        for ref in list(self._running):
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or gone
                pass
        self._running.clear()
        self._slots.clear()
        self._shutdown()

    def _shutdown(self) -> None:
        if self._started_ray:
            self._started_ray = False
            self.ray.shutdown()


def _check_reachable(address: str, timeout: float) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address '{address}' is not auto or HOST:PORT (e.g. 10.0.0.1:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise HpcnasError(
            f"no Ray cluster answers at --ray-address {address} ({err}): start it with "
            f"'ray start --head --port {port}' on {host}, or fix the address"
        ) from None
