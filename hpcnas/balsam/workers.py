"""Worker arithmetic of the Balsam evaluator: how many evaluations can run at once.

Inputs come from the launcher's environment (``BALSAM_LAUNCHER_NODES``, ``BALSAM_JOB_MODE``)
and the evaluator's options. The search master itself is a Balsam job in the same launcher
(when ``BALSAM_JOB_ID`` is set) and takes its share:

* ``serial`` mode packs jobs on a node by occupancy ``1/node_packing_count`` (Balsam starts a
  job while the node's occupancy stays <= 1.001). The master takes ``1/master_packing`` of one
  node, so that node holds ``floor((1.001 - 1/master_packing) * evals_per_node)`` evaluations
  and every other node ``evals_per_node``. A search job created with a large packing count
  (:data:`hpcnas.balsam.apps.MASTER_PACKING`, 1000) takes no evaluation slot: the master
  mostly waits on the DB. Only 1-node, 1-rank evaluations run in serial mode.
* ``mpi`` mode gives whole nodes: the master takes one node, each evaluation
  ``nodes_per_eval`` nodes: ``(nodes - 1) // nodes_per_eval``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from hpcnas.core.errors import UsageError


#: environment variables giving the evaluations per node when --num-evals-per-node is not given
#: (DeepHyper's name is an alias, so the guide's ``balsam job --env DEEPHYPER_WORKERS_PER_NODE=4``)
WORKERS_PER_NODE_VARS = ("HPCNAS_WORKERS_PER_NODE", "DEEPHYPER_WORKERS_PER_NODE")


def evals_per_node_from_env(environ: dict[str, str] | None = None) -> int:
    """Evaluations per node from :data:`WORKERS_PER_NODE_VARS` (the first set), else 1."""
    environ = os.environ if environ is None else environ
    for name in WORKERS_PER_NODE_VARS:
        text = environ.get(name, "").strip()
        if not text:
            continue
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"{name}={text!r} is not a number of evaluations per node: set it to 1 or more")
        return int(text)
    return 1


@dataclass(frozen=True)
class WorkerPlan:
    num_workers: int
    queue_ahead: int
    explanation: str

    @property
    def total(self) -> int:
        """Evaluations kept submitted: running slots + the queue kept ahead of them."""
        return self.num_workers + self.queue_ahead


def plan_workers(
    nodes: int | None,
    job_mode: str | None,
    nodes_per_eval: int = 1,
    ranks_per_node: int = 1,
    evals_per_node: int = 1,
    master_in_launcher: bool = True,
    master_packing: int = 1,
    queue_ahead: int | None = None,
) -> WorkerPlan:
    """Infer the number of concurrent evaluations; raises :class:`UsageError` when none fit."""
    for name, value in (("--num-nodes-per-eval", nodes_per_eval), ("--num-ranks-per-node", ranks_per_node),
                        ("--num-evals-per-node", evals_per_node)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    if nodes is None or job_mode is None:
        raise UsageError(
            "cannot infer the number of Balsam workers: BALSAM_LAUNCHER_NODES / BALSAM_JOB_MODE are "
            "not set (the search is not running inside `balsam launcher`); give --num-workers K"
        )
    if nodes < 1:
        raise UsageError(f"BALSAM_LAUNCHER_NODES={nodes}: the launcher has no node")
    mode = job_mode.lower()
    if mode == "serial":
        if nodes_per_eval != 1 or ranks_per_node != 1:
            raise UsageError(
                f"serial job mode runs only 1-node 1-rank jobs, but evaluations ask for "
                f"{nodes_per_eval} node(s) x {ranks_per_node} rank(s): use `balsam launcher --job-mode mpi`"
            )
        if master_in_launcher:
            master_share = 1.0 / max(1, master_packing)
            # Balsam starts a job while occupancy stays <= 1.001 (serial_mode_timed.Worker)
            on_master_node = int(math.floor((1.001 - master_share) * evals_per_node + 1e-9))
            workers = (nodes - 1) * evals_per_node + on_master_node
            text = (
                f"serial mode: {nodes} node(s) x {evals_per_node} evals/node = {nodes * evals_per_node} slots; "
                f"the search job takes 1/{master_packing} of a node, leaving {on_master_node} on its node "
                f"-> {workers} worker(s)"
            )
            if workers < 1:
                raise UsageError(
                    f"no room for evaluations: {text}. Create the search job with "
                    f"`--node-packing-count 1000` (it then takes no evaluation slot) or use more nodes"
                )
        else:
            workers = nodes * evals_per_node
            text = f"serial mode: {nodes} node(s) x {evals_per_node} evals/node -> {workers} worker(s)"
    elif mode == "mpi":
        usable = nodes - 1 if master_in_launcher else nodes
        workers = usable // nodes_per_eval
        taken = "minus 1 for the search job " if master_in_launcher else ""
        text = (
            f"mpi mode: {nodes} node(s) {taken}= {usable} node(s) / {nodes_per_eval} node(s) per eval "
            f"-> {workers} worker(s) of {nodes_per_eval * ranks_per_node} rank(s)"
        )
        if workers < 1:
            raise UsageError(
                f"no room for evaluations: {text}. Ask the launcher for at least "
                f"{nodes_per_eval + (1 if master_in_launcher else 0)} nodes or lower --num-nodes-per-eval"
            )
    else:
        raise UsageError(f"BALSAM_JOB_MODE={job_mode!r} is neither 'serial' nor 'mpi'")
    ahead = max(2, math.ceil(0.25 * workers)) if queue_ahead is None else queue_ahead
    if ahead < 0:
        raise UsageError(f"--queue-ahead must be >= 0, got {ahead}")
    return WorkerPlan(workers, ahead, f"{text}; {ahead} more queued ahead so the launcher never idles")
