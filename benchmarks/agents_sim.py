"""Several search agents against one master, on one virtual clock: what decentralizing buys.

A discrete-event simulation of ``--agents K`` (:mod:`hpcnas.search.agents`) with ``W`` workers
in all (``W / K`` each) and lognormal evaluation durations, run in one process::

    python benchmarks/agents_sim.py --workers 4096 --agents 1 4 16 --evals 16384

Each agent is a search of its own (seed ``I``) with its own workers and its own master time: a
step of agent ``I`` tells its search every result that ended since its last step (its own, and
the other agents' as a real agent reads their ``results.csv``), asks for as many configurations
as it has free workers, and those start when the step ends. The CPU time of the step
(``time.thread_time``, times ``--master-time-scale``) is charged to that agent's clock only:
while one agent computes, the others go on. That is the difference from one master, which
:mod:`benchmarks.master_scale` ``sim`` measures with the real :class:`~hpcnas.search.master.SearchMaster`
on the simulated evaluator; ``--agents 1`` here is the same one-master loop, so the two
benchmarks can be checked against each other.

Printed per method and K: slot utilization in the steady state (busy worker-seconds from the
first start to the last start, over ``W`` times that span), the busiest agent's busy fraction,
master CPU ms per evaluation, and the best objective (polynome2, maximized; 0 is the optimum)
after the same number of evaluations, so quality is compared at equal evaluations.
Idealizations, stated: a result is visible to every agent the moment it ends (real agents read
peers' files every 0.5 s at most), and reading it costs only the ``tell`` it triggers.
"""
from __future__ import annotations

import argparse
import heapq
import itertools
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.master_scale import CHECKPOINTS, make_search
from hpcnas.benchmark import polynome2


@dataclass
class Agent:
    """One agent's state: its search, free workers, when its master is next free, what it knows."""

    search: Any
    workers: int
    share: int
    free: int = 0
    busy_until: float = 0.0
    asked: int = 0
    cursor: int = 0  #: results (all agents, in end order) this agent's search has been told
    master_seconds: float = 0.0
    waiting: bool = False  #: a step of its master is queued


def simulate_agents(method: str, workers: int, agents: int, evals: int, duration: float,
                    scale: float = 1.0, sigma: float = 0.5) -> dict[str, Any]:
    """Run the simulation; the figures of one (method, W, K)."""
    if workers % agents:
        raise SystemExit(f"--workers {workers} is not a multiple of --agents {agents}")
    rng = np.random.default_rng(12345)
    shares = [evals // agents + (1 if i < evals % agents else 0) for i in range(agents)]
    pool = [Agent(make_search(method, seed=i), workers // agents, shares[i]) for i in range(agents)]
    for agent in pool:
        agent.free = agent.workers
    ended: list[tuple[float, Any, float]] = []  # (end time, config, objective), in end order
    spans: list[tuple[float, float]] = []
    events: list[tuple[float, int, str, int, Any]] = []
    seq = itertools.count()
    for i in range(agents):
        heapq.heappush(events, (0.0, next(seq), "step", i, None))
        pool[i].waiting = True
    wall = time.perf_counter()
    while events:
        now, _, kind, i, payload = heapq.heappop(events)
        agent = pool[i]
        if kind == "end":
            config, y = payload
            ended.append((now, config, y))
            agent.free += 1
            if not agent.waiting:  # its master steps as soon as it is free
                agent.waiting = True
                heapq.heappush(events, (max(now, agent.busy_until), next(seq), "step", i, None))
            continue
        agent.waiting = False
        cpu = time.thread_time()
        fresh = ended[agent.cursor:]
        agent.cursor = len(ended)
        if fresh:
            agent.search.tell([(c, y) for _, c, y in fresh])
        n = min(agent.free, agent.share - agent.asked)
        configs = agent.search.ask(n) if n > 0 else []
        spent = (time.thread_time() - cpu) * scale
        agent.master_seconds += spent
        agent.busy_until = start = now + spent
        agent.asked += len(configs)
        agent.free -= len(configs)
        for config in configs:
            d = float(duration * np.exp(sigma * rng.standard_normal()))
            spans.append((start, start + d))
            heapq.heappush(events, (start + d, next(seq), "end", i, (config, polynome2.run(config))))
    wall = time.perf_counter() - wall
    starts = np.array([s for s, _ in spans])
    ends = np.array([e for _, e in spans])
    t0, t1 = float(starts.min()), float(starts.max())
    busy = float(np.clip(np.minimum(ends, t1) - starts, 0, None).sum())
    makespan = float(ends.max() - t0)
    best = np.maximum.accumulate(np.array([y for _, _, y in ended]))
    return {
        "utilization": busy / (workers * (t1 - t0)) if t1 > t0 else float("nan"),
        "busiest_agent": max(a.master_seconds for a in pool) / makespan,
        "master_ms_per_eval": 1e3 * sum(a.master_seconds for a in pool) / scale / len(ended),
        "best": float(best[-1]),
        "best_at": {n: float(best[min(n, len(best)) - 1]) for n in CHECKPOINTS if n <= len(best)},
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["random", "age", "ambs-rf"])
    parser.add_argument("--workers", type=int, nargs="+", default=[4096])
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--evals", type=int, default=16_384)
    parser.add_argument("--duration", type=float, default=60.0, help="median evaluation duration, virtual s (60)")
    parser.add_argument("--master-time-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}", flush=True)
    for workers in args.workers:
        for method in args.methods:
            for k in args.agents:
                r = simulate_agents(method, workers, k, args.evals, args.duration, args.master_time_scale)
                print(f"W={workers:>6} {method:8} agents {k:>3} evals {args.evals:>6}: utilization "
                      f"{100 * r['utilization']:5.1f} %  busiest agent {100 * r['busiest_agent']:5.1f} %  "
                      f"master CPU {r['master_ms_per_eval']:6.2f} ms/eval  best {r['best']:9.3f}  "
                      f"best at {r['best_at']}  ({r['wall_s']:.0f} s wall)", flush=True)


if __name__ == "__main__":
    main()
