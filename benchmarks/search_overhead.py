"""Master overhead of a search: median CPU time of one ``ask(1)`` + ``tell(1)`` cycle.

Measures AMBS (RF surrogate) after 100, 1,000 and 10,000 told points, and scikit-optimize's
``Optimizer(base_estimator="RF")`` after 100 and 1,000, on polynome2 (10 float dimensions),
and prints the ratio. Told points are loaded with one bulk ``tell``; then ``--cycles`` cycles
of ask(1) -> tell(1) are timed one by one.

AMBS refits its forest only when the told count grew by 20 % since the last fit (see
:mod:`hpcnas.search.hps.ambs`): the *median* cycle is a cycle without refit; the *mean* over a
window that contains refits is the amortised cost, printed as well (and the refit time itself,
measured separately), because the median alone would hide it. Times are CPU time of this
process (``time.process_time``), so a busy machine does not inflate them.

Usage: ``python benchmarks/search_overhead.py [--cycles 30] [--skip-skopt]``
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

from hpcnas.benchmark import polynome2
from hpcnas.search.hps.ambs import AMBS


def time_ambs(n_told: int, cycles: int, seed: int = 0) -> dict[str, float]:
    search = AMBS(polynome2.Problem, random_state=seed)
    configs = polynome2.Problem.sample(n_told, rng=seed)
    search.tell([(c, polynome2.run(c)) for c in configs])
    t0 = time.process_time()
    search.ask(1)  # first ask fits the model on n_told points
    fit = time.process_time() - t0
    search._model.fit(search._features.view(), np.nan_to_num(search._y.view()[:, 0]))
    fit_again = time.process_time() - t0 - fit
    times = []
    pending = search.ask(1)
    for _ in range(cycles):
        t = time.process_time()
        search.tell([(pending[0], polynome2.run(pending[0]))])
        pending = search.ask(1)
        times.append(time.process_time() - t)
    # amortised: refit cost spread over the tells between two refits (20 % of n)
    tells_per_refit = search.tells_per_refit(n_told)
    return {
        "median": statistics.median(times),
        "max": max(times),
        "fit": fit_again,
        "amortised": statistics.median(times) + fit_again / tells_per_refit,
    }


def time_skopt(n_told: int, cycles: int, seed: int = 0) -> dict[str, float]:
    from skopt import Optimizer

    opt = Optimizer([(-10.0, 10.0)] * polynome2.NUM_DIMS, base_estimator="RF", random_state=seed,
                    n_initial_points=10)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-10, 10, size=(n_told, polynome2.NUM_DIMS)).tolist()
    opt.tell(X, [float(-y) for y in polynome2.evaluate(np.array(X))])  # skopt minimises
    times = []
    for _ in range(cycles):
        t = time.process_time()
        x = opt.ask()
        opt.tell(x, float(-polynome2.evaluate(np.array([x]))[0]))
        times.append(time.process_time() - t)
    return {"median": statistics.median(times), "max": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=30, help="timed ask+tell cycles per size")
    parser.add_argument("--skopt-cycles", type=int, default=5, help="timed cycles for skopt (slow)")
    parser.add_argument("--skip-skopt", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    ambs = {}
    for n in (100, 1_000, 10_000):
        ambs[n] = r = time_ambs(n, args.cycles)
        print(f"AMBS-RF  n={n:>6}: median ask+tell {1e3 * r['median']:7.2f} ms   max {1e3 * r['max']:7.1f} ms   "
              f"refit {1e3 * r['fit']:7.1f} ms   amortised {1e3 * r['amortised']:7.2f} ms", flush=True)
    if args.skip_skopt:
        return
    for n in (100, 1_000):
        r = time_skopt(n, args.skopt_cycles)
        print(f"skopt-RF n={n:>6}: median ask+tell {1e3 * r['median']:7.2f} ms   max {1e3 * r['max']:7.1f} ms   "
              f"ratio skopt/AMBS {r['median'] / ambs[n]['median']:6.1f}x", flush=True)
    target = ambs[10_000]["amortised"] <= 0.015
    print(f"target AMBS-RF amortised <= 15 ms CPU at 10,000 points: {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    main()
