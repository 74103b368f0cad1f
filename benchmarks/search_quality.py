"""Search quality on polynome2 at full size: 10 dims, 200 evaluations, 4 asynchronous workers.

Prints each seed's best objective (optimum 0) for ambs, age and random search, the number of
seeds above -1.0, and the medians. Workers are simulated in-process by
:func:`hpcnas.benchmark.simulate.simulate_async` (ask 4, then tell 1 / ask 1 as they finish).

Usage: ``python benchmarks/search_quality.py [--seeds 5] [--evals 200] [--dims 10]``
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from hpcnas.benchmark import polynome2
from hpcnas.benchmark.simulate import best_so_far, simulate_async
from hpcnas.search import get_search_class

#: label -> (registered search name, options); AgE gets a population that fits a 200 budget
OPTIONS = {
    "ambs": ("ambs", {}),
    "ambs-gp": ("ambs", {"surrogate_model": "GP"}),
    "age": ("age", {"population_size": 20, "sample_size": 5}),
    "random": ("random", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evals", type=int, default=200)
    parser.add_argument("--dims", type=int, default=polynome2.NUM_DIMS)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--searches", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    args = parser.parse_args()
    problem = polynome2.build(args.dims)
    print(f"polynome2 dims={args.dims} evals={args.evals} workers={args.workers} seeds={args.seeds}")
    for name in args.searches:
        start = time.perf_counter()
        bests = []
        for seed in range(args.seeds):
            search_name, options = OPTIONS[name]
            search = get_search_class("hps", search_name)(problem, random_state=seed, **options)
            told = simulate_async(search, polynome2.run, args.evals, args.workers, seed)
            bests.append(best_so_far(told)[-1])
        bests_arr = np.array(bests)
        print(f"{name:>8}: bests {' '.join(f'{b:9.3f}' for b in bests_arr)} | above -1.0: "
              f"{int((bests_arr > -1.0).sum())}/{args.seeds} | median {np.median(bests_arr):9.3f} | "
              f"{time.perf_counter() - start:5.1f} s", flush=True)


if __name__ == "__main__":
    main()
