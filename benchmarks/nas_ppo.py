"""PPO vs aging evolution vs random search at equal evaluations on a tabular NAS problem of the suite.

Every architecture of NAS-Bench-201 (6 edges x 5 operations, 15 625 cells) has its validation
accuracy in the table (``benchmarks.suite.problems``, mean over training seeds), so a run is the
searches' own cost. All three searches are the hpcnas NAS searches (``nas ppo``, ``nas age``,
``nas random``) driven batch by batch: ``--batch`` architectures asked, then told, as a search
with that many workers would see them (PPO updates once per batch). Printed: per method the
median over seeds of the *regret* (best accuracy of the table minus the best found, in points of
validation accuracy, lower is better) after 25/50/100 % of the evaluations, and the wall time.

    python benchmarks/nas_ppo.py                                   # nb201-cifar10, 300 evals, 3 seeds
    python benchmarks/nas_ppo.py --problem nb201-cifar100 --evals 200 --agents 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

METHODS = ("ppo", "age", "random")


class TableNas:
    """The NaProblem surface the NAS searches use, over one decision per parameter of a suite space."""

    searched_hyperparameters: list[str] = []
    hp_problem = None
    starting_points: list[dict[str, Any]] = []

    def __init__(self, bench: Any) -> None:
        self.bench = bench
        self.params = bench.space.params
        sizes = [len(p.choices) for p in self.params]
        self.arch_space = SimpleNamespace(choice_sizes=sizes, num_choices=len(sizes))

    def check(self) -> None:
        pass

    def make_config(self, arch_seq: list[int], hyperparameters: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"arch_seq": [int(v) for v in arch_seq]}

    def sample(self, n: int, rng: Any) -> list[dict[str, Any]]:
        return [self.make_config([int(rng.integers(len(p.choices))) for p in self.params]) for _ in range(n)]

    def loss(self, config: dict[str, Any]) -> float:
        return self.bench.loss({p.name: p.choices[v] for p, v in zip(self.params, config["arch_seq"])})


def run_one(method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.suite.problems import get_problem
    from hpcnas.search.base import get_search_class

    bench = get_problem(args.problem)
    problem = TableNas(bench)
    options: dict[str, Any] = {
        "ppo": {"num_agents": args.agents, "network": args.network, "ent_coef": args.ent_coef, "lr": args.lr,
                "noptepochs": args.noptepochs},
        "age": {"population_size": args.population_size, "sample_size": args.sample_size},
        "random": {},
    }[method]
    search = get_search_class("nas", method)(problem, random_state=seed, **options)
    start, best, curve = time.time(), float("inf"), []
    while len(curve) < args.evals:
        configs = search.ask(min(args.batch, args.evals - len(curve)))
        losses = [problem.loss(c) for c in configs]
        search.tell([(c, -y) for c, y in zip(configs, losses)])  # searches maximise
        for y in losses:
            best = min(best, y)
            curve.append(best - bench.minimum)
    search.close()
    marks = {f"{int(f * 100)}%": curve[max(1, round(f * len(curve))) - 1] for f in (0.25, 0.5, 1.0)}
    return {"method": method, "seed": seed, "regret": marks, "wall_s": time.time() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="nb201-cifar10", help="a tabular NAS problem of benchmarks/suite")
    parser.add_argument("--evals", type=int, default=300)
    parser.add_argument("--batch", type=int, default=10, help="architectures per batch (workers)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--agents", type=int, default=1, help="PPO agents sharing each batch")
    parser.add_argument("--network", default="ppo_lstm_32")
    parser.add_argument("--ent-coef", type=float, default=0.01)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--noptepochs", type=int, default=10)
    parser.add_argument("--population-size", type=int, default=30)
    parser.add_argument("--sample-size", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("hpcnas").setLevel(logging.WARNING)  # no line per PPO update
    runs = []
    for seed in args.seeds:
        for method in args.methods:
            row = run_one(method, seed, args)
            runs.append(row)
            print(f"{method:6s} seed {seed}: regret at 25/50/100% "
                  + " ".join(f"{v:.3f}" for v in row["regret"].values()) + f"  wall {row['wall_s']:.1f} s", flush=True)
    print(f"\n{args.problem}, {args.evals} evaluations in batches of {args.batch}, seeds {args.seeds}: "
          "median regret (validation accuracy points below the table's best)")
    print(f"{'method':8s} {'25%':>8s} {'50%':>8s} {'100%':>8s} {'wall s':>8s}")
    for method in args.methods:
        mine = [r for r in runs if r["method"] == method]
        cells = [statistics.median(r["regret"][k] for r in mine) for k in ("25%", "50%", "100%")]
        wall = statistics.median(r["wall_s"] for r in mine)
        print(f"{method:8s} " + " ".join(f"{c:8.3f}" for c in cells) + f" {wall:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
