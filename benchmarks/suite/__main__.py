"""Search-quality suite: every hpcnas search and the peers side by side, on many problems.

Usage (from the repository root; peers: ``pip install -e '.[bench]'``)::

    python -m benchmarks.suite                        # the full suite (hours on 2 cores)
    python -m benchmarks.suite --problems rastrigin-6 nb201-cifar10 --seeds 3 --methods ambs optuna-tpe
    python -m benchmarks.suite --report suite.json    # tables again from a saved run

Each (problem, method, seed, workers) runs ``--evals`` evaluations (500) for the cheap methods
and ``--costly-evals`` (100) for the costly ones (GP-based peers, DeepHyper CBO); regret at
every budget in ``--budgets`` is read off the same run (asks never depend on the budget).
Sequential-only peers run with 1 worker. Runs go to ``--jobs`` processes; the JSON holds every
run's regret curve and CPU time. See :mod:`benchmarks.suite.report` for what is printed.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks.suite.methods import METHODS, available
from benchmarks.suite.problems import PROBLEM_NAMES
from benchmarks.suite.report import render
from benchmarks.suite.runner import RUN_KEYS, run_one, run_task

DEFAULT_METHODS = ["ambs", "ambs-et", "ambs-gp", "age", "random", "optuna-tpe", "optuna-gp", "skopt-gp",
                   "skopt-rf", "deephyper-cbo"]


def _tasks(args: argparse.Namespace, methods: list[str]) -> list[tuple[str, str, int, int, int]]:
    tasks = []
    for problem in args.problems:
        for method in methods:
            _, cost = METHODS[method]
            evals = args.evals if cost == "cheap" else args.costly_evals
            workers = [1] if _sequential(method) else args.workers
            seeds = args.seeds if cost == "cheap" else args.costly_seeds or args.seeds
            for w in workers:
                for seed in range(args.first_seed, args.first_seed + seeds):
                    tasks.append((problem, method, seed, w, evals, args.ambs_option))
    # longest first, so the pool does not end on one long run
    return sorted(tasks, key=lambda t: -t[4] * (3 if METHODS[t[1]][1] == "costly" else 1))


def _open(path: str) -> Any:
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path)


def _option(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, value), the value read as JSON when it parses (numbers, true)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got '{text}'")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _ambs_option_problem(options: dict[str, Any]) -> str | None:
    """Why ``--ambs-option`` cannot run (one line), or None: a value the shell stripped of its
    JSON quotes (text where AMBS has a number or a dict), or a short trial run that fails."""
    from hpcnas.search.hps.ambs import AMBS

    for name, value in options.items():
        default = getattr(AMBS, name, None)
        if isinstance(value, str) and default is not None and not isinstance(default, str):
            return (f"--ambs-option {name}: AMBS's {name} is {json.dumps(default)}, not text like '{value}'; "
                    f"quote the whole option for the shell, e.g. '{name}={json.dumps(default)}'")
    trial = run_one("branin-2", "ambs", 0, 2, 16, options)  # past the initial points: the model is used
    return f"--ambs-option: a trial run of ambs failed: {trial.failed}" if trial.failed else None


def _sequential(method: str) -> bool:
    return method in ("skopt-gp", "skopt-rf", "deephyper-cbo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEM_NAMES), choices=PROBLEM_NAMES)
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=list(METHODS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--evals", type=int, default=500)
    parser.add_argument("--costly-evals", type=int, default=100)
    parser.add_argument("--costly-seeds", type=int, help="seeds of the costly methods (default: --seeds)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--output", default="suite.jsonl",
                        help="every run as one JSON line, appended as runs end (default: suite.jsonl)")
    parser.add_argument("--ambs-option", nargs="+", default=[], metavar="NAME=VALUE", type=_option,
                        help="run ambs with this setting instead of its default (a constructor argument "
                             "or a class setting, e.g. liar_strategy=kb random_share=0.2); recorded in the JSON")
    parser.add_argument("--markdown", help="also write the tables as markdown to this file")
    parser.add_argument("--report", nargs="+", metavar="JSONL",
                        help="print the tables of saved runs (several files, plain or .gz, are merged) and exit")
    args = parser.parse_args(argv)
    args.ambs_option = dict(args.ambs_option)
    if args.report:
        runs = []
        for path in args.report:
            found = [json.loads(line) for line in _open(path) if line.strip()]
            if any(not RUN_KEYS <= set(run) for run in found):
                print(f"{path}: not a file of suite runs (a line lacks {', '.join(sorted(RUN_KEYS))}); "
                      "multi-fidelity runs are read by python -m benchmarks.suite.multifidelity --report",
                      file=sys.stderr)
                return 2
            runs += found
    else:
        why_not = _ambs_option_problem(args.ambs_option) if args.ambs_option and "ambs" in args.methods else None
        if why_not:
            print(why_not, file=sys.stderr)
            return 2
        methods = []
        for m in args.methods:
            why = available(m)
            if why:
                print(f"skipping {m}: {why}", file=sys.stderr)
            else:
                methods.append(m)
        tasks = _tasks(args, methods)
        print(f"{len(tasks)} runs on {args.jobs} processes", file=sys.stderr)
        start = time.time()
        runs = []
        with ProcessPoolExecutor(args.jobs) as pool, open(args.output, "a") as out:
            for i, run in enumerate(pool.map(run_task, tasks, chunksize=1), 1):
                runs.append(run)
                out.write(json.dumps(run) + "\n")
                out.flush()
                if run["failed"]:
                    print(f"  {run['method']} on {run['problem']} seed {run['seed']} failed: {run['failed']}",
                          file=sys.stderr)
                if i % 20 == 0 or i == len(tasks):
                    print(f"  {i}/{len(tasks)} runs, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    budgets = sorted(args.budgets)
    workers = sorted({r["workers"] for r in runs})
    print(render(runs, budgets, workers))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(render(runs, budgets, workers, markdown=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
