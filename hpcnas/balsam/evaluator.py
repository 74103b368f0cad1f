"""The ``balsam`` evaluator: every evaluation is a ``BalsamJob`` run by the real Balsam launcher.

* ``submit`` creates one job per configuration (bulk ``INSERT``) in the search's workflow:
  application :data:`~hpcnas.balsam.apps.RUNNER_APP` (``python -m hpcnas.balsam.job_runner
  RUN b64:CONFIG``), ``num_nodes``, ``ranks_per_node``, ``threads_per_rank``,
  ``node_packing_count``, ``environ_vars``, and the evaluation's identity in ``data``; created
  ``PREPROCESSED`` with their working directory (:mod:`hpcnas.balsam.fastforward`), so the
  launcher starts them without waiting for a transition process.
* ``gather`` polls with one query per poll for the states of all pending jobs (and one more
  that reads the jobs found in a final state), 0.05 s after the gather starts and then at
  periods growing to ``poll_interval`` (0.5 s) while nothing finishes. The runner's report in
  ``data`` (or its ``HPCNAS_RESULT`` output line) gives objective and status; ``RUN_ERROR`` / ``FAILED`` /
  ``USER_KILLED`` without a report are ``FAILED`` with the error tail from ``state_history``.
  Start and end times come from ``state_history`` (``RUNNING`` -> ``RUN_DONE``/``RUN_ERROR``);
  the result's ``log`` is the job's ``.out`` file.
* Vanished jobs: a pending job whose row is gone from the DB (a Postgres crash that lost the
  last commits, ``balsam rm``) is created again once, with the same evaluation id and
  configuration (one warning line); when it vanishes a second time it becomes a ``FAILED``
  result, so the master never waits for a job that no longer exists.
* Workers: inferred from the launcher (:func:`hpcnas.balsam.workers.plan_workers`), printed at
  start-up, overridable by ``--num-workers``; ``num_workers`` includes a small queue kept ahead
  of the free slots so the launcher never waits for the master.
* Resume: ``recover`` reads every evaluation of this search in the DB (finished: results;
  pending or running: adopted, not re-created) after releasing jobs held by dead launchers.
* Per-configuration resources: ``resources="pkg.mod.func"`` (or a ``resources`` attribute on
  the run function) maps a configuration to any of ``num_nodes``, ``ranks_per_node``,
  ``threads_per_rank``, ``node_packing_count`` for that evaluation.
* Multi-fidelity: the scheduler's address and key (``HPCNAS_MF_ADDRESS``/``_AUTHKEY``: the
  search's evaluation environment, :meth:`~hpcnas.evaluator.base.Evaluator.use_evaluation_env`) are added to every job's ``environ_vars`` (the address as ``host/port``),
  so evaluations report to the scheduler and can be stopped early; their reports come back in
  the runner's report, a stopped evaluation as ``STOPPED`` with its last objective.
* A search running as a Balsam job (``BALSAM_JOB_ID`` set) is identified by its job id, so a
  restarted search job finds its own evaluations; otherwise by its workflow name.
"""
from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Callable

from hpcnas.balsam.jobs import (
    EVAL_KEY, RESULT_KEY, STATE_STATUS, cpu_affinity_for, encode_config, env_string, find_marker, job_outcome,
)
from hpcnas.core.environment import number as env_number
from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.core.loading import load_attribute
from hpcnas.core.trial import Outcome
from hpcnas.evaluator.base import Config, EvalResult, Evaluator, register_evaluator

RESOURCE_KEYS = ("num_nodes", "ranks_per_node", "threads_per_rank", "node_packing_count")
log = logging.getLogger(__name__)
_FINAL_STATES = tuple(STATE_STATUS)
#: seconds between the first polls of a gather; each empty poll waits POLL_GROWTH times longer, up
#: to ``poll_interval``: results of short evaluations are seen within ~0.05 s, long ones cost a
#: query per ``poll_interval``
FIRST_POLL_S = 0.05
POLL_GROWTH = 1.5


@register_evaluator("balsam")
class BalsamEvaluator(Evaluator):
    """Evaluations as Balsam 0.x jobs (see the module docstring)."""

    def __init__(
        self,
        run_function: str | Callable[..., Any],
        num_workers: int | None = None,
        eval_timeout: float | None = None,
        num_nodes_per_eval: int = 1,
        num_ranks_per_node: int = 1,
        num_threads_per_rank: int = 1,
        num_evals_per_node: int | None = None,
        workflow: str | None = None,
        queue_ahead: int | None = None,
        poll_interval: float = 0.5,
        resources: str | Callable[[Config], dict[str, int]] | None = None,
        environment: dict[str, str] | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__(run_function, num_workers=num_workers, eval_timeout=eval_timeout)
        #: seconds the master keeps retrying a Balsam DB that stopped answering (restart, outage)
        #: before it gives up with a one-line error; the same command then resumes the search
        self.db_retry_s = float(env_number("HPCNAS_DB_RETRY_S") or 0.0)
        self.run_path = _dotted_path(run_function)
        if poll_interval <= 0:
            raise UsageError(f"poll interval must be positive seconds, got {poll_interval}")
        self.poll_interval = poll_interval
        if num_evals_per_node is None:
            from hpcnas.balsam.workers import evals_per_node_from_env

            num_evals_per_node = evals_per_node_from_env()
        self.defaults = {
            "num_nodes": int(num_nodes_per_eval),
            "ranks_per_node": int(num_ranks_per_node),
            "threads_per_rank": int(num_threads_per_rank),
            "node_packing_count": int(num_evals_per_node),
        }
        for key, value in self.defaults.items():
            if value < 1:
                raise UsageError(f"{key.replace('_', ' ')} must be at least 1, got {value}")
        self.environment = dict(environment or {})
        env_string(self.environment)  # a value Balsam cannot carry fails here, before any job
        self._resources = _resource_function(resources, run_function)

        from hpcnas.balsam.apps import ensure_runner_app
        from hpcnas.balsam.connect import connect
        from hpcnas.balsam.fastforward import runnable_at_creation

        self.db = connect()
        self.app = ensure_runner_app(self.db)
        self._runnable = runnable_at_creation(self.db, self.app)  # created PREPROCESSED (fastforward)
        self.search_job = self._current_search_job()
        self.workflow = workflow or (self.search_job.workflow if self.search_job else None) or "hpcnas"
        self.search_id = str(self.search_job.pk) if self.search_job else f"workflow:{self.workflow}"
        self.job_mode = os.environ.get("BALSAM_JOB_MODE")
        self.plan_text = self._plan_workers(num_workers, queue_ahead)
        self._pks: dict[str, Any] = {}  # hpcnas job id -> BalsamJob pk
        self._submit_times: dict[str, float] = {}
        self._recreated: set[str] = set()  # evaluations whose job vanished once and was created again
        self._seq = 0
        if verbose:
            print(f"hpcnas: balsam evaluator | workflow {self.workflow} | {self.plan_text}", flush=True)

    # ----------------------------------------------------------------- options
    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument("--num-nodes-per-eval", type=int, metavar="N", help="nodes per evaluation (default 1)")
        parser.add_argument("--num-ranks-per-node", type=int, metavar="R", help="MPI ranks per node (default 1)")
        parser.add_argument("--num-threads-per-rank", type=int, metavar="T", help="threads per rank (default 1)")
        parser.add_argument(
            "--num-evals-per-node", type=int, metavar="K",
            help="evaluations packed on a node in serial mode (node_packing_count; default "
            "$HPCNAS_WORKERS_PER_NODE or DeepHyper's $DEEPHYPER_WORKERS_PER_NODE, else 1)",
        )
        parser.add_argument("--workflow", metavar="NAME", help="Balsam workflow of the evaluations (default: the search job's)")
        parser.add_argument("--queue-ahead", type=int, metavar="Q", help="evaluations queued beyond the free slots")
        parser.add_argument("--resources", metavar="PATH", help="dotted path of resources(config) -> dict of per-eval resources")

    # ----------------------------------------------------------------- set-up
    def _current_search_job(self) -> Any:
        job_id = os.environ.get("BALSAM_JOB_ID")
        if not job_id:
            return None
        return self.db.BalsamJob.objects.filter(pk=job_id).first()

    def _plan_workers(self, num_workers: int | None, queue_ahead: int | None) -> str:
        from hpcnas.balsam.workers import plan_workers

        if self.job_mode == "serial" and (self.defaults["num_nodes"] > 1 or self.defaults["ranks_per_node"] > 1):
            plan_workers(1, "serial", self.defaults["num_nodes"], self.defaults["ranks_per_node"])  # raises
        if num_workers is not None:
            self._num_workers = num_workers + (queue_ahead or 0)
            return f"{num_workers} worker(s) from --num-workers, {queue_ahead or 0} queued ahead"
        nodes = os.environ.get("BALSAM_LAUNCHER_NODES")
        plan = plan_workers(
            int(nodes) if nodes and nodes.isdigit() else None,
            self.job_mode,
            nodes_per_eval=self.defaults["num_nodes"],
            ranks_per_node=self.defaults["ranks_per_node"],
            evals_per_node=self.defaults["node_packing_count"],
            master_in_launcher=self.search_job is not None,
            master_packing=self.search_job.node_packing_count if self.search_job is not None else 1,
            queue_ahead=queue_ahead,
        )
        self._num_workers = plan.total
        return plan.explanation

    # ----------------------------------------------------------------- backend
    def _job_fields(self, config: Config) -> dict[str, int]:
        fields = dict(self.defaults)
        if self._resources is not None:
            extra = self._resources(dict(config)) or {}
            unknown = set(extra) - set(RESOURCE_KEYS)
            if unknown:
                raise HpcnasError(
                    f"resources(config) returned unknown key(s) {sorted(unknown)}: use {', '.join(RESOURCE_KEYS)}"
                )
            fields.update({k: int(v) for k, v in extra.items()})
        if self.job_mode == "serial" and (fields["num_nodes"] > 1 or fields["ranks_per_node"] > 1):
            raise HpcnasError(
                f"an evaluation asks for {fields['num_nodes']} node(s) x {fields['ranks_per_node']} rank(s) but the "
                "launcher runs in serial mode, which never starts such jobs: use --job-mode mpi"
            )
        return fields

    def _submit(self, jobs: list[tuple[str, Config]], submit_time: float) -> None:
        self._create([(job_id, config, submit_time) for job_id, config in jobs])

    def _create(self, jobs: list[tuple[str, Config, float]]) -> None:
        """Insert one job per ``(job_id, config, submit_time)`` (one bulk ``INSERT``)."""
        BalsamJob = self.db.BalsamJob
        timeout_arg = f" --timeout {self.eval_timeout:g}" if self.eval_timeout else ""
        env_text = env_string({**self.environment, **scheduler_environment(self.evaluation_env)})
        wall = max(1, math.ceil((self.eval_timeout or 60) / 60))
        objs = []
        for job_id, config, submit_time in jobs:
            self._seq += 1
            fields = self._job_fields(config)
            objs.append(BalsamJob(
                name=f"eval-{job_id}",
                workflow=self.workflow,
                description=f"hpcnas evaluation of search {self.search_id}",
                application=self.app,
                args=f"{self.run_path} {encode_config(config)}{timeout_arg} --trial-id {job_id}",
                wall_time_minutes=wall,
                cpu_affinity=cpu_affinity_for(fields["threads_per_rank"]),
                environ_vars=env_text,
                data={EVAL_KEY: {"job_id": job_id, "config": config, "search": self.search_id,
                                 "submit_time": submit_time}},
                **fields,
            ))
        if self._runnable:
            from hpcnas.balsam.fastforward import make_runnable

            make_runnable(self.db.models, objs)
        attempts: list[int] = []

        def create() -> None:
            todo = objs
            if attempts:  # a retry after a lost connection: the first insert may have landed
                names = set(BalsamJob.objects.filter(pk__in=[o.pk for o in objs]).values_list("name", flat=True))
                todo = [o for o in objs if o.name not in names]
            attempts.append(1)
            BalsamJob.objects.bulk_create(todo)

        self._db_call("creating jobs", create)
        for (job_id, _, submit_time), obj in zip(jobs, objs):
            self._pks[job_id] = obj.pk
            self._submit_times[job_id] = submit_time

    def _gather(self, timeout: float | None) -> list[EvalResult]:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        period = min(FIRST_POLL_S, self.poll_interval)
        while True:
            results = self._db_call("polling the jobs", self._poll)
            if results or not self._pks:
                return results
            if deadline is not None and time.monotonic() >= deadline:
                return []
            wait = period if deadline is None else min(period, deadline - time.monotonic())
            time.sleep(max(0.0, wait))
            period = min(self.poll_interval, period * POLL_GROWTH)

    def _db_call(self, what: str, func: Callable[[], Any]) -> Any:
        """``func()``, retried while the DB does not answer (up to ``db_retry_s`` seconds)."""
        from django import db

        lost = None
        while True:
            try:
                value = func()
            except (db.OperationalError, db.InterfaceError) as err:
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                now = time.monotonic()
                if lost is None:
                    lost = now
                    log.warning("the Balsam DB stopped answering while %s (%s): retrying for up to %g s",
                                what, first, self.db_retry_s)
                elif now - lost > self.db_retry_s:
                    raise HpcnasError(
                        f"the Balsam DB did not answer for {self.db_retry_s:g} s while {what} ({first}): start it "
                        "(source balsamactivate DB) and run the same command again to resume"
                    ) from err
                try:
                    self.db.connection.close()  # the next query opens a new connection
                except db.Error:
                    pass
                time.sleep(min(5.0, max(1.0, self.poll_interval)))
                continue
            if lost is not None:
                log.warning("reconnected to the Balsam DB after %.0f s; the search goes on", time.monotonic() - lost)
            return value

    def _poll(self) -> list[EvalResult]:
        """The pending jobs that reached a final state, and those whose row vanished."""
        BalsamJob = self.db.BalsamJob
        states = dict(BalsamJob.objects.filter(pk__in=list(self._pks.values())).values_list("pk", "state"))
        by_pk = {pk: job_id for job_id, pk in self._pks.items()}
        vanished = [job_id for pk, job_id in by_pk.items() if pk not in states]
        final = [pk for pk, state in states.items() if state in _FINAL_STATES]
        results = []
        if final:
            rows = BalsamJob.objects.filter(pk__in=final).values(
                "pk", "name", "workflow", "state", "state_history", "data", "num_nodes", "ranks_per_node"
            )
            for row in rows:  # a row deleted since the first query is found vanished next time
                job_id = by_pk[row["pk"]]
                results.append(self._result(job_id, self._pending.get(job_id, {}), row))
                del self._pks[job_id]
        if vanished:
            results.extend(self._vanished(vanished))
        return results

    def _vanished(self, job_ids: list[str]) -> list[EvalResult]:
        """Create the jobs of ``job_ids`` again, once; those that vanished before are failed results."""
        again = [j for j in job_ids if j not in self._recreated]
        twice = [j for j in job_ids if j in self._recreated]
        parts = []
        if again:
            parts.append(f"created again once: {', '.join(f'eval-{j}' for j in again)}")
        if twice:
            parts.append(f"gone a second time, recorded as failed: {', '.join(f'eval-{j}' for j in twice)}")
        log.warning("%d pending Balsam job(s) vanished from the DB (a Postgres crash lost them, or they were "
                    "deleted); %s", len(job_ids), "; ".join(parts))
        lost = {j: self._pks.pop(j) for j in job_ids}
        if again:
            self._recreated.update(again)
            self._create([(j, self._pending.get(j, {}), self._submit_times.get(j) or time.time()) for j in again])
        now = time.time()
        error = ("[balsam] the job vanished from the Balsam DB twice (created again once after the first time): a "
                 "Postgres server losing commits (synchronous_commit=off?) or jobs deleted by hand")
        return [
            EvalResult.from_outcome(j, self._pending.get(j, {}), Outcome.failure(error, None, now),
                                    submit_time=self._submit_times.get(j), worker="balsam",
                                    metadata={"balsam_job_id": str(lost[j])})
            for j in twice
        ]

    def _result(self, job_id: str, config: Config, row: dict[str, Any]) -> EvalResult:
        data = row["data"] or {}
        report = data.get(RESULT_KEY) or self._marker(row)
        ident = data.get(EVAL_KEY, {})
        out = self._out_path(row)
        return EvalResult.from_outcome(
            job_id, config or ident.get("config", {}), job_outcome(report, row["state"], row["state_history"]),
            submit_time=ident.get("submit_time", self._submit_times.get(job_id)),
            # the runner names its host; a process that died before reporting is only known as "balsam"
            worker=(report or {}).get("host") or "balsam",
            log=out if os.path.isfile(out) else None,
            metadata={"balsam_job_id": str(row["pk"]), "balsam_state": row["state"],
                      "num_nodes": row["num_nodes"], "ranks_per_node": row["ranks_per_node"]},
        )

    def _out_path(self, row: dict[str, Any]) -> str:
        """The job's ``.out`` file (its latest attempt; earlier ones are ``.out.1``, ... under the
        hpcnas launcher, :mod:`hpcnas.balsam.outfiles`)."""
        name = row["name"].strip().replace(" ", "_")
        top = os.path.join(self.db.settings.BALSAM_WORK_DIRECTORY, row["workflow"]) if row["workflow"] else \
            self.db.settings.BALSAM_WORK_DIRECTORY
        return os.path.join(top, f"{name}_{str(row['pk'])[:8]}", f"{row['name']}.out")

    def _marker(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """Fallback: the runner's ``HPCNAS_RESULT`` line in the job's ``.out`` file."""
        path = self._out_path(row)
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(path) - 65536))
                return find_marker(fh.read().decode("utf-8", "replace"))
        except OSError:
            return None

    def _recover(self) -> tuple[list[EvalResult], dict[str, Config]]:
        from hpcnas.balsam.recover import release_dead_locks

        release_dead_locks(self.db, workflow=self.workflow)
        rows = list(
            self.db.BalsamJob.objects.filter(workflow=self.workflow, **{f"data__{EVAL_KEY}__search": self.search_id})
            .values("pk", "name", "workflow", "state", "state_history", "data", "num_nodes", "ranks_per_node")
        )
        finished: list[EvalResult] = []
        pending: dict[str, Config] = {}
        for row in rows:
            ident = (row["data"] or {}).get(EVAL_KEY, {})
            job_id = ident.get("job_id") or str(row["pk"])
            config = ident.get("config", {})
            if row["state"] in _FINAL_STATES:
                finished.append(self._result(job_id, config, row))
            elif job_id not in self._pks:
                self._pks[job_id] = row["pk"]
                self._submit_times[job_id] = ident.get("submit_time")
                pending[job_id] = config
        return finished, pending

    def _close(self) -> None:
        """Leave submitted jobs in the DB (a resumed search adopts them) and drop the connection."""
        self.db.connection.close()

    # ----------------------------------------------------------------- extras
    def cancel_pending(self) -> int:
        """Mark every pending evaluation ``USER_KILLED`` (the launcher stops running ones)."""
        pks = list(self._pks.values())
        if pks:
            self.db.BalsamJob.batch_update_state(pks, "USER_KILLED", "hpcnas: search stopped")
        return len(pks)


def scheduler_environment(evaluation_env: dict[str, str] | None = None) -> dict[str, str]:
    """The multi-fidelity scheduler's variables (the search's evaluation environment, over this
    process's), in a form Balsam can carry."""
    from hpcnas.multifidelity.protocol import carried_environment

    return carried_environment({**os.environ, **(evaluation_env or {})})


def _dotted_path(run_function: str | Callable[..., Any]) -> str:
    if isinstance(run_function, str):
        return run_function
    module = getattr(run_function, "__module__", None)
    name = getattr(run_function, "__qualname__", "")
    if not module or module == "__main__" or "<" in name:
        raise UsageError(
            "the balsam evaluator runs evaluations in other processes: give the run function as a "
            "dotted path (pkg.module.run) defined at module level"
        )
    return f"{module}.{name}"


def _resource_function(
    resources: str | Callable[[Config], dict[str, int]] | None, run_function: Any
) -> Callable[[Config], dict[str, int]] | None:
    if isinstance(resources, str):
        resources = load_attribute(resources, "resources function")
    if resources is None:
        func = load_attribute(run_function, "run function") if isinstance(run_function, str) else run_function
        resources = getattr(func, "resources", None)
    if resources is not None and not callable(resources):
        raise UsageError("resources must be a function resources(config) -> dict")
    return resources


__all__ = ["BalsamEvaluator", "RESOURCE_KEYS"]
