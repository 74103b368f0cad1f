"""Per-evaluation overhead of the local evaluator and of the search master loop.

Prints figures (no assertions)::

    python benchmarks/local_overhead.py [--evals 2000] [--workers 2]

1. local evaluator alone: a run function that returns at once, submitted ``workers`` at a
   time (as the master does): wall time per evaluation = the round-trip overhead;
2. worker start-up: time to the first result of a fresh evaluator (process start + imports);
3. master + local evaluator on evaluations that sleep 0.2 s: worker utilization after start-up
   and the median idle gap between two evaluations on a worker;
4. master loop with the random search and the simulated evaluator (no evaluation cost):
   time per evaluation including ask, tell and results.csv appends, with an fsync per batch
   and with ``sync_interval=1``.

``--slots 8 64`` instead measures slot utilization of AMBS (master + local evaluator, refits in
a background thread) beside Optuna TPE (``study.optimize`` with ``n_jobs=W`` threads) in one
run: ``20 x W`` evaluations of polynome2 that sleep ``--seconds`` (0.5) each, utilization =
busy worker-seconds / (W x span from the first start to the last end), and the master's CPU
time per evaluation (``time.process_time`` of this process; the workers are other processes).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hpcnas.evaluator import create_evaluator  # noqa: E402

RF = "tests.support.run_functions."


def local_round_trip(evals: int, workers: int) -> None:
    with create_evaluator("local", RF + "echo", num_workers=workers) as ev:
        start = time.perf_counter()
        ev.submit([{"value": 1.0}])
        ev.gather()
        print(f"worker start-up (first result): {1000 * (time.perf_counter() - start):.1f} ms")
        ev.submit([{"value": 1.0}] * workers)  # start the other workers
        while ev.num_pending:
            ev.gather()
        done = 0
        start = time.perf_counter()
        ev.submit([{"value": 1.0}] * workers)
        while done < evals:
            results = ev.gather()
            done += len(results)
            if done + ev.num_pending < evals:
                ev.submit([{"value": 1.0}] * min(len(results), evals - done - ev.num_pending))
        elapsed = time.perf_counter() - start
    print(f"local evaluator, {workers} workers, {evals} no-op evaluations: {elapsed:.2f} s, "
          f"{1e6 * elapsed / evals:.0f} us per evaluation, {evals / elapsed:.0f} evaluations/s")


def master_throughput(evals: int, workers: int, sync_interval: float = 0.0) -> None:
    from hpcnas.search.hps.random_search import RandomSearch
    from hpcnas.search.master import SearchMaster
    from tests.support.toy import Problem

    with tempfile.TemporaryDirectory() as out:
        ev = create_evaluator("simulated", RF + "quadratic", num_workers=workers, default_duration=1.0)
        master = SearchMaster(Problem, RandomSearch(Problem, random_state=0), ev, out, evals, progress=False,
                              sync_interval=sync_interval)
        start = time.perf_counter()
        master.run()
        elapsed = time.perf_counter() - start
    sync = "fsync per batch" if sync_interval == 0 else f"fsync every {sync_interval:g} s"
    print(f"master loop (random search, simulated evaluator, {workers} workers, {sync}), "
          f"{evals} evaluations: {elapsed:.2f} s, {1e6 * elapsed / evals:.0f} us per evaluation")


def local_utilization(evals: int, workers: int, seconds: float = 0.2) -> None:
    """Master + local evaluator on evaluations that sleep: how busy the workers are kept."""
    from hpcnas.search.hps.random_search import RandomSearch
    from hpcnas.search.master import SearchMaster
    from tests.support.toy import Problem

    with tempfile.TemporaryDirectory() as out:
        with create_evaluator("local", RF + "sleep_then_echo", num_workers=workers) as ev:
            df = SearchMaster(Problem, RandomSearch(Problem, random_state=0), ev, out, evals, progress=False).run()
    steady = df.sort_values("start_time").iloc[workers:]  # skip the first wave (worker start-up)
    span = steady["end_time"].max() - steady["start_time"].min()
    busy = steady["duration"].sum()
    gaps = (steady.sort_values("start_time").groupby("worker")["start_time"].diff()
            - seconds).dropna()
    print(f"master + local evaluator, {workers} workers, {evals} evaluations of {seconds} s: "
          f"worker utilization {100 * busy / (workers * span):.1f} % after start-up, "
          f"median gap between evaluations on a worker {1000 * gaps.median():.1f} ms")


def sleeping_polynome2(config: dict) -> float:
    """polynome2 after ``HPCNAS_BENCH_SLEEP`` seconds (a worker imports it by dotted path)."""
    from hpcnas.benchmark import polynome2

    time.sleep(float(os.environ.get("HPCNAS_BENCH_SLEEP", "0.5")))
    return polynome2.run(config)


def slot_utilization(method: str, workers: int, seconds: float) -> None:
    from hpcnas.benchmark import polynome2

    evals = 20 * workers
    os.environ["HPCNAS_BENCH_SLEEP"] = str(seconds)
    cpu = time.process_time()
    if method == "optuna-tpe":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        spans = []

        def objective(trial):
            config = {k: trial.suggest_float(k, polynome2.LOW, polynome2.HIGH) for k in polynome2.Problem.hyperparameter_names}
            start = time.time()
            y = sleeping_polynome2(config)
            spans.append((start, time.time()))
            return y

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
        study.optimize(objective, n_trials=evals, n_jobs=workers)
        starts, ends = zip(*spans)
        busy, span, best = sum(e - s for s, e in spans), max(ends) - min(starts), study.best_value
    else:
        from hpcnas.search.hps.ambs import AMBS
        from hpcnas.search.master import SearchMaster

        search = AMBS(polynome2.Problem, random_state=0)
        with tempfile.TemporaryDirectory() as out:
            with create_evaluator("local", "benchmarks.local_overhead.sleeping_polynome2", num_workers=workers) as ev:
                df = SearchMaster(polynome2.Problem, search, ev, out, evals, progress=False).run()
        search.close()
        busy = float(df["duration"].sum())
        span = float(df["end_time"].max() - df["start_time"].min())
        best = float(df["objective"].max())
    cpu = time.process_time() - cpu
    print(f"{method:10} {workers:>3} workers, {evals} evaluations of {seconds} s: slot utilization "
          f"{busy / (workers * span):.3f}, master CPU {1e3 * cpu / evals:.1f} ms per evaluation, best {best:.2f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slots", type=int, nargs="+", metavar="W",
                        help="only the slot utilization of AMBS beside Optuna TPE at these worker counts")
    parser.add_argument("--seconds", type=float, default=0.5, help="evaluation length for --slots (0.5 s)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    if args.slots:
        for workers in args.slots:
            for method in ("ambs", "optuna-tpe"):
                slot_utilization(method, workers, args.seconds)
        return
    local_round_trip(args.evals, args.workers)
    for workers in (args.workers, 16):
        local_utilization(max(100, 10 * workers), workers)
    for workers in (args.workers, 64):
        for sync_interval in (0.0, 1.0):
            master_throughput(args.evals, workers, sync_interval)


if __name__ == "__main__":
    main()
