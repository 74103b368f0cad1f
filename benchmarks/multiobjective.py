"""Multi-objective search quality: hypervolume of AMBS, AgE and random search against Optuna's
NSGA-II and multi-objective TPE, on ZDT1 and DTLZ2 (2 objectives), at equal evaluations.

* ZDT1 (Zitzler, Deb & Thiele 2000) with 10 variables in [0, 1], both objectives minimised;
  reference point (11, 11) as BoTorch's ZDT1 test problem; the true front f2 = 1 - sqrt(f1)
  dominates HV* = 120 + 2/3 over it.
* DTLZ2 (Deb et al. 2002) with 2 objectives and 6 variables (k = 5); reference point
  (1.1, 1.1); the true front is the quarter circle of radius 1, HV* = 1.21 - pi / 4.

Each method runs sequentially (ask one, tell one) for the largest budget; the figures at a
smaller budget are those of its first evaluations (every method here is anytime: nothing
depends on the budget). Printed per problem and budget: the hypervolume gap HV* - HV (lower is
better; mean and standard deviation over the seeds) and the mean hypervolume.

hpcnas's searches maximise, so they are told (-f1, -f2); Optuna minimises (f1, f2).

Usage: ``python -m benchmarks.multiobjective [--evals 100 300] [--seeds 3] [--jobs 1]``
(needs ``optuna``, ``hpcnas[bench]``, and ``moocore``, ``hpcnas[multiobjective]``).
"""
from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from hpcnas.problem import HpProblem
from hpcnas.search import get_search_class
from hpcnas.search.multiobjective import hypervolume


@dataclass(frozen=True)
class Benchmark:
    name: str
    dims: int
    reference: tuple[float, float]
    optimum: float  # hypervolume of the true front over the reference point
    f: Callable[[np.ndarray], tuple[float, float]]


def zdt1(x: np.ndarray) -> tuple[float, float]:
    g = 1.0 + 9.0 * x[1:].mean()
    return float(x[0]), float(g * (1.0 - math.sqrt(x[0] / g)))


def dtlz2(x: np.ndarray) -> tuple[float, float]:
    g = float(((x[1:] - 0.5) ** 2).sum())
    angle = x[0] * math.pi / 2
    return (1.0 + g) * math.cos(angle), (1.0 + g) * math.sin(angle)


BENCHMARKS = {
    "zdt1": Benchmark("zdt1", 10, (11.0, 11.0), 120.0 + 2.0 / 3.0, zdt1),
    "dtlz2": Benchmark("dtlz2", 6, (1.1, 1.1), 1.21 - math.pi / 4, dtlz2),
}
#: label -> hpcnas search and options (AgE: a population that evolves within 100 evaluations)
HPCNAS = {
    "ambs": ("ambs", {}),
    "age": ("age", {"population_size": 25, "sample_size": 5}),
    "random": ("random", {}),
}
OPTUNA = ("optuna-nsga2", "optuna-tpe")
METHODS = (*HPCNAS, *OPTUNA)


def space(dims: int) -> HpProblem:
    problem = HpProblem()
    for i in range(dims):
        problem.add_hyperparameter((0.0, 1.0), f"x{i}")
    return problem


def run_hpcnas(bench: Benchmark, label: str, seed: int, evals: int) -> np.ndarray:
    name, options = HPCNAS[label]
    search = get_search_class("hps", name)(space(bench.dims), random_state=seed, **options)
    search.use_objectives(2)
    rows = []
    for _ in range(evals):
        (config,) = search.ask(1)
        f = bench.f(np.array([config[f"x{i}"] for i in range(bench.dims)]))
        search.tell([(config, (-f[0], -f[1]))])
        rows.append(f)
    return np.array(rows)


def run_optuna(bench: Benchmark, label: str, seed: int, evals: int) -> np.ndarray:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(seed=seed) if label == "optuna-nsga2" else \
        optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)

    def objective(trial: Any) -> tuple[float, float]:
        return bench.f(np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(bench.dims)]))

    study.optimize(objective, n_trials=evals)
    return np.array([t.values for t in study.trials])


def one_run(job: tuple[str, str, int, int]) -> tuple[str, str, int, np.ndarray, float]:
    problem, label, seed, evals = job
    bench = BENCHMARKS[problem]
    start = time.perf_counter()
    rows = (run_hpcnas if label in HPCNAS else run_optuna)(bench, label, seed, evals)
    return problem, label, seed, rows, time.perf_counter() - start


def hv(bench: Benchmark, rows: np.ndarray) -> float:
    """Hypervolume of minimised rows over the benchmark's reference point."""
    return hypervolume(-rows, [-r for r in bench.reference])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--problems", nargs="+", default=list(BENCHMARKS), choices=list(BENCHMARKS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default 1)")
    args = parser.parse_args()
    budget = max(args.evals)
    jobs = [(p, m, s, budget) for p in args.problems for m in args.methods for s in range(args.seeds)]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            done = list(pool.map(one_run, jobs))
    else:
        done = [one_run(job) for job in jobs]
    seconds: dict[tuple[str, str], list[float]] = {}
    runs: dict[tuple[str, str], list[np.ndarray]] = {}
    for problem, label, _, rows, spent in done:
        runs.setdefault((problem, label), []).append(rows)
        seconds.setdefault((problem, label), []).append(spent)
    print(f"hypervolume gap HV* - HV (lower is better), mean +- std over {args.seeds} seeds; "
          f"in brackets the mean HV; sequential, {budget} evaluations per run")
    header = f"{'problem':>7} {'method':>13} | " + " | ".join(f"{n:>27} evals" for n in sorted(args.evals)) + \
        " | s/run"
    print(header)
    print("-" * len(header))
    for problem in args.problems:
        bench = BENCHMARKS[problem]
        for label in args.methods:
            cells = []
            for n in sorted(args.evals):
                values = np.array([hv(bench, rows[:n]) for rows in runs[(problem, label)]])
                gap = bench.optimum - values
                cells.append(f"{gap.mean():10.4f} +- {gap.std():7.4f} ({values.mean():8.4f})")
            print(f"{problem:>7} {label:>13} | " + " | ".join(f"{c:>33}" for c in cells) +
                  f" | {np.mean(seconds[(problem, label)]):5.1f}", flush=True)


if __name__ == "__main__":
    main()
