"""The search master at thousands of workers: its cost per evaluation and the utilization it allows.

Prints figures (no assertions). Two parts::

    python benchmarks/master_scale.py cost [--told 1000] [--pending 0 256 1024 4096]
    python benchmarks/master_scale.py sim [--workers 1024 4096 10240] [--evals 50000] [--quick]

``cost``: CPU time of the master thread (``time.thread_time``) for one search after ``--told``
bulk-told points (polynome2, 10 floats) with ``P`` evaluations pending, for each ``P`` of
``--pending``: the median ``tell(1) + ask(1)`` cycle (the pending count stays ``P``), the
refit, and ``ask(k)`` for the largest ``P`` (ms per asked point). A cost that does not grow
with ``P`` is what thousands of workers need.

``sim``: the search master on the simulated evaluator (:mod:`hpcnas.evaluator.simulated`),
which charges the master's own CPU time to the virtual clock, with ``W`` workers and
lognormal evaluation durations of median ``--duration`` (60 s, sigma 0.5), ``--evals``
evaluations of polynome2: slot utilization (busy worker-seconds / (W x makespan)), the
master's busy fraction (charged seconds / makespan), and the best objective after the same
number of evaluations for every method. Utilization is the steady state: from the first start
to the last start (then the budget is spent and the workers drain whatever the master does). Optuna TPE (ask/tell) is the peer; it runs at most
``--max-peer-evals`` evaluations (it costs seconds per ask at thousands of points), and its
best objective is then compared at that count. ``--quick``: 1,024 and 4,096 workers, 4 x W
evaluations.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any

import numpy as np

from hpcnas.benchmark import polynome2
from hpcnas.search.base import Search

SEARCHES = {
    "random": ("random", {}),
    "age": ("age", {}),
    "ambs-rf": ("ambs", {"surrogate_model": "RF"}),
    "ambs-et": ("ambs", {"surrogate_model": "ET"}),
    "ambs-gp": ("ambs", {"surrogate_model": "GP"}),
}


def make_search(method: str, seed: int = 0) -> Any:
    from hpcnas.search.base import get_search_class

    name, options = SEARCHES[method]
    return get_search_class("hps", name)(polynome2.Problem, random_state=seed, **options)


# ----------------------------------------------------------------------------- cost
def cost(method: str, told: int, pendings: list[int], cycles: int) -> None:
    for pending in pendings:
        search = make_search(method)
        configs = polynome2.Problem.sample(told, rng=1)
        search.tell([(c, polynome2.run(c)) for c in configs])
        t = time.thread_time()
        queue = search.ask(pending) if pending else []
        ask_k = time.thread_time() - t
        times = []
        for _ in range(cycles):
            t = time.thread_time()
            if queue:
                done = queue.pop(0)
                search.tell([(done, polynome2.run(done))])
            queue.extend(search.ask(1))
            times.append(time.thread_time() - t)
        refit = _time_refit(search)
        per_ask = f"ask({pending}) {1e3 * ask_k / pending:6.2f} ms/point" if pending else ""
        print(f"{method:8} told {told:>6} pending {pending:>5}: median tell+ask {1e3 * statistics.median(times):7.2f} ms"
              f"  max {1e3 * max(times):8.1f} ms  refit {1e3 * refit:8.1f} ms  {per_ask}", flush=True)


def _time_refit(search: Any) -> float:
    refit = getattr(search, "_refit", None)
    if refit is None:
        return 0.0
    t = time.thread_time()
    refit()
    return time.thread_time() - t


# ----------------------------------------------------------------------------- sim
def lognormal_duration(median: float, sigma: float = 0.5):
    rng = np.random.default_rng(12345)

    def duration(config: dict[str, Any]) -> float:
        return float(median * np.exp(sigma * rng.standard_normal()))

    return duration


def simulate(method: str, workers: int, evals: int, duration: float, scale: float, seed: int = 0) -> dict[str, Any]:
    from hpcnas.evaluator import create_evaluator
    from hpcnas.search.master import SearchMaster

    search = make_search(method, seed) if method != "optuna-tpe" else OptunaSearch(polynome2.Problem)
    with tempfile.TemporaryDirectory() as out:
        evaluator = create_evaluator("simulated", polynome2.run, num_workers=workers, origin=0.0,
                                     duration_function=lognormal_duration(duration), master_time_scale=scale)
        master = SearchMaster(polynome2.Problem, search, evaluator, out, evals, progress=False, sync_interval=60.0)
        t = time.perf_counter()
        df = master.run()
        wall = time.perf_counter() - t
        evaluator.close()
    span = float(df["end_time"].max() - df["start_time"].min())
    # steady state: from the first start to the last start (afterwards the budget is spent and
    # the workers drain, whatever the master)
    t0, t1 = float(df["start_time"].min()), float(df["start_time"].max())
    busy = float((df["end_time"].clip(upper=t1) - df["start_time"]).clip(lower=0).sum())
    best = df.sort_values("end_time")["objective"].cummax().reset_index(drop=True)
    return {
        "utilization": busy / (workers * (t1 - t0)) if t1 > t0 else float("nan"), "master_busy": evaluator.master_seconds / span,
        "master_ms_per_eval": 1e3 * evaluator.master_seconds / scale / len(df), "makespan_s": span,
        "best": float(best.iloc[-1]), "best_at": {n: float(best.iloc[min(n, len(best)) - 1]) for n in CHECKPOINTS},
        "wall_s": wall, "region": (getattr(search, "num_region_gains", None), getattr(search, "num_radius_restarts", None)),
    }


CHECKPOINTS = (1_000, 5_000, 10_000, 50_000)


class OptunaSearch(Search):
    """Optuna TPE through its ask/tell interface, as an hpcnas search (floats only: polynome2)."""

    name = "optuna-tpe"

    def __init__(self, problem: Any, seed: int = 0) -> None:
        import optuna

        super().__init__(problem, random_state=seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        self.names = problem.hyperparameter_names
        self.trials: dict[str, Any] = {}

    def _ask(self, n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            trial = self.study.ask()
            config = {k: trial.suggest_float(k, polynome2.LOW, polynome2.HIGH) for k in self.names}
            self.trials[repr(sorted(config.items()))] = trial
            out.append(config)
        return out

    def _tell(self, results: list[tuple[dict[str, Any], float | None]]) -> None:
        for config, y in results:
            trial = self.trials.pop(repr(sorted(config.items())))
            self.study.tell(trial, y, state=None if y is not None else self.optuna.trial.TrialState.FAIL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    c = sub.add_parser("cost", help="CPU per tell+ask, refit and ask(k) vs the pending count")
    c.add_argument("--methods", nargs="+", default=["ambs-rf", "ambs-et", "ambs-gp", "age"], choices=list(SEARCHES))
    c.add_argument("--told", type=int, default=1000)
    c.add_argument("--pending", type=int, nargs="+", default=[0, 256, 1024, 4096])
    c.add_argument("--cycles", type=int, default=20)
    s = sub.add_parser("sim", help="utilization and master busy fraction on the simulated evaluator")
    s.add_argument("--methods", nargs="+", default=["random", "age", "ambs-rf", "ambs-et", "ambs-gp", "optuna-tpe"],
                   choices=[*SEARCHES, "optuna-tpe"])
    s.add_argument("--workers", type=int, nargs="+", default=[1024, 4096, 10240])
    s.add_argument("--evals", type=int, default=50_000)
    s.add_argument("--duration", type=float, default=60.0, help="median evaluation duration, virtual s (60)")
    s.add_argument("--master-time-scale", type=float, default=1.0)
    s.add_argument("--max-peer-evals", type=int, default=2_000, help="evaluations of the Optuna peer (2,000)")
    s.add_argument("--seed", type=int, default=0, help="the search's random_state (0; durations do not change)")
    s.add_argument("--quick", action="store_true", help="1,024 and 4,096 workers, 4 x workers evaluations")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}", flush=True)
    if args.part == "cost":
        for method in args.methods:
            cost(method, args.told, args.pending, args.cycles)
        return
    for workers in ([1024, 4096] if args.quick else args.workers):
        evals = 4 * workers if args.quick else args.evals
        for method in args.methods:
            n = min(evals, args.max_peer_evals) if method == "optuna-tpe" else evals
            r = simulate(method, workers, n, args.duration, args.master_time_scale, args.seed)
            at = {k: v for k, v in r["best_at"].items() if k <= n}
            util = "n/a (all asked at once)" if n <= workers else f"{100 * r['utilization']:5.1f} %"
            print(f"W={workers:>6} {method:10} evals {n:>6}: utilization {util}  "
                  f"master busy {100 * r['master_busy']:5.1f} %  master CPU {r['master_ms_per_eval']:6.2f} ms/eval  "
                  f"best {r['best']:9.3f}  best at {at}  ({r['wall_s']:.0f} s wall)", flush=True)
            if r["region"][0] is not None:  # AMBS: what its step-size rule saw
                print(f"{'':9}trust region: {r['region'][0]} improvements of the best, "
                      f"{r['region'][1]} restarts of the radius", flush=True)


if __name__ == "__main__":
    main()
