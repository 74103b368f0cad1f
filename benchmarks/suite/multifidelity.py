"""The searcher under a multi-fidelity scheduler (ASHA, PASHA), chosen on the suite's problems.

Usage (from the repository root)::

    python -m benchmarks.suite.multifidelity                       # every problem, random/ambs/age
    python -m benchmarks.suite.multifidelity --problems branin-2 nb201-cifar10 --seeds 3

Each suite problem gets *learning curves*: a configuration ``c`` trained for ``r`` of ``R``
units (epochs) has the loss ``loss(c) + scale * z_c * (R / r - 1) / (R - 1)``, where ``z_c``
is drawn once per configuration (uniform in ``[0, 2]``, from a hash of the configuration) and
``scale`` is the median regret of 64 random configurations: curves fall to the final loss at
``R``, early rungs rank configurations with noise that shrinks as they train, and curves
cross. The scheduler runs in hpcnas's own in-process simulator
(:func:`hpcnas.multifidelity.simulate.simulate`, ``--workers`` simulated workers, one time
unit per epoch), the searcher asked for a configuration whenever a worker frees up and told
each trial's last objective when it ends (stopped trials too: what the search does through
the master). A run spends ``--budget`` x ``R`` epochs; its score is the regret of the
configuration the scheduler returns (its best at the highest rung reached).

Prints the median regret per problem and searcher and the searchers' mean ranks; writes one
JSON line per run to ``--output``.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
from typing import Any

import numpy as np

from benchmarks.suite.problems import PROBLEM_NAMES, BenchProblem, get_problem
from benchmarks.suite.report import _table_lines, mean_ranks
from hpcnas.multifidelity.policy import StoppingPolicy, create_policy
from hpcnas.multifidelity.simulate import simulate
from hpcnas.search import get_search_class


class AskedConfigs:
    """The simulator's sequence of configurations, asked from a searcher one at a time while
    fewer than the budget's epochs are spent."""

    def __init__(self, searcher: Any, policy: StoppingPolicy, budget: float) -> None:
        self.searcher, self.policy, self.budget = searcher, policy, budget
        self.configs: list[dict[str, Any]] = []

    def __len__(self) -> int:
        # the simulator starts trial len(configs) only while this grows
        return len(self.configs) + (1 if self.policy.resource_used() < self.budget else 0)

    def __getitem__(self, index: int) -> dict[str, Any]:
        while index >= len(self.configs):
            self.configs.append(self.searcher.ask(1)[0])
        return self.configs[index]


class TellingPolicy:
    """Wraps a policy for the simulator: tells the searcher each trial's last objective when
    the trial ends (the simulator calls ``report``, ``poll``, ``end``, ``release``, ``best``)."""

    def __init__(self, inner: StoppingPolicy, searcher: Any, asked: AskedConfigs) -> None:
        self.inner, self.searcher, self.asked = inner, searcher, asked
        self.last: dict[Any, float] = {}
        self.max_resource, self.name = inner.max_resource, getattr(inner, "name", "policy")

    def report(self, trial_id: Any, step: float, objective: float) -> Any:
        self.last[trial_id] = objective
        return self.inner.report(trial_id, step, objective)

    def poll(self, trial_id: Any) -> Any:
        return self.inner.poll(trial_id)

    def end(self, trial_id: Any) -> None:
        self.inner.end(trial_id)
        self.searcher.tell([(self.asked.configs[trial_id], self.last.get(trial_id))])

    def release(self) -> None:
        self.inner.release()

    def resource_used(self, trial_id: Any = None) -> float:
        return self.inner.resource_used(trial_id)

    def best(self) -> Any:
        return self.inner.best()


@functools.lru_cache(maxsize=None)
def curve_scale(problem_name: str) -> float:
    """Median regret of 64 random configurations: the size of the early-training gap."""
    problem = get_problem(problem_name)
    space = problem.space.hp_problem()
    configs = get_search_class("hps", "random")(space, random_state=12345).ask(64)
    return float(np.median([problem.regret(c) for c in configs])) or 1.0


def curve_of(problem: BenchProblem, scale: float, max_resource: int) -> Any:
    def curve(config: dict[str, Any]) -> Any:
        digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).digest()
        z = 2.0 * int.from_bytes(digest[:8], "little") / 2**64
        final = problem.regret(config)
        return lambda r: -(final + scale * z * (max_resource / r - 1) / (max_resource - 1))
    return curve


def run_one(problem_name: str, searcher_name: str, scheduler: str, seed: int, workers: int,
            budget: float, max_resource: int = 27) -> dict[str, Any]:
    problem = get_problem(problem_name)
    searcher = get_search_class("hps", searcher_name)(problem.space.hp_problem(), random_state=seed)
    inner = create_policy(scheduler, min_resource=1, max_resource=max_resource, reduction_factor=3)
    asked = AskedConfigs(searcher, inner, budget * max_resource)
    result = simulate(TellingPolicy(inner, searcher, asked), asked,
                      curve_of(problem, curve_scale(problem_name), max_resource), num_workers=workers)
    best = result.best_config
    return {"problem": problem_name, "searcher": searcher_name, "scheduler": scheduler, "seed": seed,
            "workers": workers, "trials": len(result.trials), "resource": result.total_resource,
            "regret": None if best is None else problem.regret(best)}


def render(runs: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for scheduler in sorted({r["scheduler"] for r in runs}):
        sub = [r for r in runs if r["scheduler"] == scheduler]
        problems = sorted({r["problem"] for r in sub})
        searchers = sorted({r["searcher"] for r in sub})
        table = np.array([[np.median([r["regret"] for r in sub if r["problem"] == p and r["searcher"] == s])
                           for s in searchers] for p in problems])
        lines.append(f"\n### {scheduler}: median regret of the returned configuration (lower is better)\n")
        rows = [[p, *(f"{v:.3g}" for v in row)] for p, row in zip(problems, table)]
        ranks = mean_ranks(searchers, table)
        rows.append(["mean rank", *(f"{ranks.get(s, float('nan')):.2f}" for s in searchers)])
        lines += _table_lines(["problem", *searchers], rows, markdown=False)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite.multifidelity",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEM_NAMES), choices=PROBLEM_NAMES)
    parser.add_argument("--searchers", nargs="+", default=["random", "ambs", "age"])
    parser.add_argument("--schedulers", nargs="+", default=["asha"], choices=["asha", "pasha"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--budget", type=float, default=50.0,
                        help="epochs of the run in units of one full training (default: 50)")
    parser.add_argument("--output", default="suite_multifidelity.jsonl")
    parser.add_argument("--report", nargs="+", metavar="JSONL", help="print the table of saved runs and exit")
    args = parser.parse_args(argv)
    if args.report:
        from benchmarks.suite.__main__ import _open

        print(render([json.loads(line) for path in args.report for line in _open(path)]))
        return 0
    runs = []
    with open(args.output, "a") as out:
        for problem in args.problems:
            for scheduler in args.schedulers:
                for searcher in args.searchers:
                    for seed in range(args.seeds):
                        run = run_one(problem, searcher, scheduler, seed, args.workers, args.budget)
                        out.write(json.dumps(run) + "\n")
                        out.flush()
                        runs.append(run)
            print(f"  {problem} done", file=sys.stderr)
    print(render(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
