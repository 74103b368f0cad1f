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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    local_round_trip(args.evals, args.workers)
    for workers in (args.workers, 16):
        local_utilization(max(100, 10 * workers), workers)
    for workers in (args.workers, 64):
        for sync_interval in (0.0, 1.0):
            master_throughput(args.evals, workers, sync_interval)


if __name__ == "__main__":
    main()
