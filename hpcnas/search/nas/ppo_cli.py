"""The command of ``hpcnas nas ppo`` / ``python -m hpcnas.search.nas.ppo``: agents, workers, outputs.

* Outside mpirun, one process runs ``--num-agents`` agents with one evaluator whose workers they
  share; results go to ``--output-dir`` as for any search, each update to ``ppo_updates.csv``.
* Under mpirun (the Balsam app in ``mpi`` job mode: ``balsam job --num-nodes 11`` starts 11 ranks),
  every rank is an agent with its own evaluator and its own output directory
  ``OUTPUT/agent<rank>`` (results.csv, ppo_updates.csv; each resumable); at the end rank 0 writes
  every agent's results into ``OUTPUT/results.csv`` with an ``agent`` column. Evaluations of agent
  ``r`` are tagged ``<search>/agent<r>`` in the Balsam DB, so a resumed agent adopts only its own.
* The workers: ``--num-workers K`` is the total, shared equally (the rest unused); a search job
  inside an MPI-mode launcher of ``BALSAM_LAUNCHER_NODES`` nodes leaves its own nodes (one per
  agent) out and shares the others (128 nodes, 11 agents: 117 evaluation nodes, 10 per agent,
  7 unused, as DeepHyper's Theta guide computes); otherwise each agent gets its evaluator's
  default workers. The split is printed at start-up.
"""
from __future__ import annotations

import argparse
import copy
import os
from typing import Any

from hpcnas.core import interrupts
from hpcnas.core.errors import UsageError
from hpcnas.search.nas import ppo_math
from hpcnas.search.nas.ppo_agents import world

UPDATES_FILE = "ppo_updates.csv"


def plan_split(args: argparse.Namespace, ranks: int, local_agents: int, environ: dict[str, str]) -> ppo_math.WorkerSplit | None:
    """The worker split, or ``None`` when every agent takes its evaluator's default workers."""
    agents = ranks * local_agents
    if args.num_workers is not None:
        return ppo_math.split_workers(agents, args.num_workers)
    nodes = environ.get("BALSAM_LAUNCHER_NODES", "")
    inside = args.evaluator == "balsam" and environ.get("BALSAM_JOB_ID") and nodes.isdigit() \
        and (environ.get("BALSAM_JOB_MODE") or "").lower() == "mpi"
    if inside:
        per_eval = getattr(args, "num_nodes_per_eval", None) or 1
        return ppo_math.launcher_split(int(nodes), ranks, per_eval, agents)
    return None


def agent_count(args: argparse.Namespace, ranks: int) -> int:
    """Agents in this process: ``--num-agents`` outside mpirun, 1 per rank under it."""
    wanted = getattr(args, "num_agents", None)
    if wanted is not None and wanted < 1:
        raise UsageError(f"--num-agents must be at least 1, got {wanted}")
    if ranks == 1:
        return 1 if wanted is None else wanted
    if wanted is not None and wanted != ranks:
        raise UsageError(
            f"--num-agents {wanted} but mpirun started {ranks} ranks: under mpirun every rank is one agent "
            f"(give -n {wanted}, or leave --num-agents out)"
        )
    return 1


def run(family: str, name: str, args: argparse.Namespace, search_dests: list[str], evaluator_dests: list[str]) -> int:
    """Run this process's agent(s). Under mpirun, whatever happens here (an error on one rank, a
    signal), every rank exchanges the stop flag once and meets the others at a last barrier, so
    no rank is left waiting; then rank 0 merges the agents' results."""
    comm = world()
    # first, before anything can fail on one rank only: every rank takes part in each exchange
    shared_seed = comm.bcast(args.seed if args.seed is not None or comm.rank else _fresh_seed())
    mine = copy.copy(args)
    if comm.size > 1:
        mine.output_dir = os.path.join(args.output_dir, f"agent{comm.rank}")
        mine.seed = shared_seed
    held: dict[str, Any] = {}
    try:
        _run_agent(family, name, mine, search_dests, evaluator_dests, comm, shared_seed, held)
    finally:
        comm.stop()  # a no-op when the stop flag was exchanged already
        if "search" in held:
            _write_updates(held["search"].updates, mine.output_dir)
        if comm.size > 1:
            comm.barrier()  # every agent's results.csv is complete
            if comm.rank == 0:
                merge_agents(args.output_dir, comm.size)
    return 0


def _run_agent(family: str, name: str, mine: argparse.Namespace, search_dests: list[str],
               evaluator_dests: list[str], comm: Any, shared_seed: int | None, held: dict[str, Any]) -> None:
    from hpcnas.cli import search_cmd
    from hpcnas.evaluator.base import create_evaluator
    from hpcnas.evaluator.runner import resolve_run_function
    from hpcnas.search.base import get_search_class

    search_cmd._setup_logging()
    local = agent_count(mine, comm.size)
    split = plan_split(mine, comm.size, local, dict(os.environ))
    if comm.size > 1:
        mine.max_evals = ppo_math.share_evals(mine.max_evals, comm.size, comm.rank)
    problem = search_cmd._load_problem(family, mine.problem)
    resolve_run_function(mine.run)
    search_options = search_cmd._picked(mine, search_dests)
    search_options.pop("num_agents", None)
    evaluator_options = search_cmd._picked(mine, evaluator_dests)
    seed = search_cmd.resume_seed(mine.seed, mine.output_dir)
    search: Any = get_search_class(family, name)(
        problem, random_state=seed, num_agents=local, comm=comm, first_agent=comm.rank,
        policy_seed=shared_seed if shared_seed is not None else seed, **search_options,
    )
    held["search"] = search
    search_cmd._warm_start(mine, problem)
    num_workers = split.per_agent * local if split is not None else None
    evaluator = create_evaluator(mine.evaluator, mine.run, num_workers=num_workers, eval_timeout=mine.eval_timeout,
                                 **evaluator_options)
    if comm.size > 1 and hasattr(evaluator, "search_id"):
        evaluator.search_id = f"{evaluator.search_id}/agent{comm.rank}"  # each agent recovers its own jobs
    if split is None:  # the evaluator's default workers: one evaluator per rank
        what = "evaluation workers (the evaluator's default" + (" on each rank)" if comm.size > 1 else ")")
        try:
            split = ppo_math.split_workers(comm.size * local, comm.size * evaluator.num_workers, what)
        except UsageError:
            evaluator.close()
            raise
    search.capacity = split.per_agent * local
    if comm.rank == 0:
        print(f"hpcnas: {split.line}", flush=True)
    if comm.size > 1:
        print(f"hpcnas: PPO agent {comm.rank}: {split.per_agent} worker(s), {mine.max_evals} evaluations, "
              f"output {mine.output_dir}", flush=True)
    with interrupts.raising():
        search_cmd._run_master(family, name, mine, problem, search, evaluator, seed, search_options,
                               evaluator_options)


def _fresh_seed() -> int:
    import numpy as np

    return int(np.random.SeedSequence().generate_state(1)[0] >> 1)


def _write_updates(rows: list[dict[str, Any]], output_dir: str) -> None:
    if not rows or not os.path.isdir(output_dir):
        return
    import pandas as pd

    path = os.path.join(output_dir, UPDATES_FILE)
    frame = pd.DataFrame(rows)
    if os.path.exists(path):  # a resumed agent: its earlier updates stay
        earlier = pd.read_csv(path)
        frame["update"] += int(earlier["update"].max()) if len(earlier) else 0
        frame = pd.concat([earlier, frame], ignore_index=True)
    frame.to_csv(path, index=False)


def merge_agents(output_dir: str, ranks: int) -> str | None:
    """``OUTPUT/results.csv``: every agent's ``results.csv`` with an ``agent`` column (rank 0, at the end)."""
    import pandas as pd

    frames = []
    for rank in range(ranks):
        path = os.path.join(output_dir, f"agent{rank}", "results.csv")
        if os.path.exists(path):
            frame = pd.read_csv(path)
            frame.insert(0, "agent", rank)
            frames.append(frame)
    if not frames:
        return None
    target = os.path.join(output_dir, "results.csv")
    merged = pd.concat(frames, ignore_index=True)
    merged.to_csv(target + ".tmp", index=False)
    os.replace(target + ".tmp", target)
    print(f"hpcnas: PPO: {len(merged)} evaluations of {len(frames)} agent(s) in {target}", flush=True)
    return target
