"""Node utilization through the real Balsam launcher, as ``hpcnas-analytics utilization`` reports it.

A search (``--search``, AMBS by default) runs as a Balsam job (``--node-packing-count 1000``: it
takes no evaluation slot) under ``python -m hpcnas.balsam.launch --job-mode serial`` on this
machine (one node), its evaluations packed ``--packing`` per node (``--num-evals-per-node``),
each sleeping ``--seconds`` (:func:`run`), ``--packing * --rounds`` of them. Once the launcher
has quit by itself (the ensemble's "workflow done" rule), ``hpcnas-analytics utilization`` is run
on the search; the figure is its ``lifetime`` block (the launcher's first log line to its last:
start-up, the time each slot waits for its next job, the idle tail) and the first-start-to-last-end
one beside it. Sleeping evaluations barely load the machine, so several runs can share it.

    python benchmarks/balsam_utilization.py [--seconds 30] [--packing 4] [--rounds 20] [--json out.json]

Needs what ``benchmarks/balsam_throughput.py`` needs (root, or a user who can run Postgres).
This module's top level imports only the standard library: every evaluation imports it for
:func:`run`.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any

PROBLEM = "benchmarks.balsam_utilization.Problem"
RUN = "benchmarks.balsam_utilization.run"
SLEEP_VAR = "HPCNAS_BENCH_SLEEP_S"


def __getattr__(name: str) -> Any:
    """``Problem`` (``x`` in [-10, 10]) is built on first use: evaluations skip ConfigSpace."""
    if name != "Problem":
        raise AttributeError(name)
    from hpcnas.problem import HpProblem

    problem = HpProblem()
    problem.add_hyperparameter((-10.0, 10.0), "x")
    globals()[name] = problem
    return problem


def run(config: dict[str, Any]) -> float:
    """Sleep ``$HPCNAS_BENCH_SLEEP_S`` seconds; objective ``-x**2``."""
    time.sleep(float(os.environ.get(SLEEP_VAR, "30")))
    return -float(config["x"]) ** 2


def utilization_run(seconds: float, packing: int, rounds: int, search: str, seed: int) -> dict:
    import glob
    import json
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    from hpcnas.analytics.cli import main as analytics
    from tests.support.balsam_env import make_balsam_env

    env = make_balsam_env()
    try:
        wf = f"util{int(time.time())}"
        evals = packing * rounds
        args = (f"--evaluator balsam --problem {PROBLEM} --run {RUN} --max-evals {evals} "
                f"--num-evals-per-node {packing} --seed {seed} --no-progress")
        env.balsam("job", "--name", "search", "--workflow", wf, "--application", search.upper(),
                   "--node-packing-count", "1000", "--args", args, "--yes")
        knobs = {k: v for k, v in os.environ.items() if k.startswith("HPCNAS_") and k.endswith(("_S", "_SERVER"))}
        started = time.time()
        launcher = env.popen([sys.executable, "-m", "hpcnas.balsam.launch", "--wf-filter", wf, "--job-mode", "serial",
                              "--time-limit-minutes", str(int(seconds * rounds / 60) + 30)],
                             os.path.join(env.base, "launcher.log"), **{SLEEP_VAR: str(seconds)}, **knobs)
        limit = seconds * rounds * 3 + 600
        while launcher.poll() is None and time.time() - started < limit:
            time.sleep(2)
        quit_by_itself = launcher.poll() is not None
        env.stop(launcher)
        state = env.query(f"BalsamJob.objects.get(workflow={wf!r}, name='search').state")
        if state != "JOB_FINISHED":
            raise RuntimeError(f"search job ended in state {state}")
        search_dir = glob.glob(os.path.join(env.db_path, "data", wf, "search_*"))[0]
        out = tempfile.mkdtemp(prefix="hpcnas-bench-util-")
        code = analytics(["utilization", search_dir, "--db", env.db_path, "--workflow", wf, "-o", out])
        if code != 0:
            raise RuntimeError(f"hpcnas-analytics utilization failed ({code})")
        with open(os.path.join(out, "utilization.json"), encoding="utf-8") as fh:
            util = json.load(fh)
        return {"seconds": seconds, "packing": packing, "rounds": rounds, "evals": evals, "search": search,
                "launcher_quit_by_itself": quit_by_itself, "wall_s": time.time() - started, "knobs": knobs,
                "utilization_percent": util["utilization_percent"], "lifetime": util.get("lifetime"),
                "idle_node_seconds": util["idle_node_seconds"], "nodes": util["nodes"], "analytics_dir": out}
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds each evaluation sleeps")
    parser.add_argument("--packing", type=int, default=4, help="evaluations per node")
    parser.add_argument("--rounds", type=int, default=20, help="evaluations per slot (packing * rounds in all)")
    parser.add_argument("--search", default="ambs", choices=("ambs", "random"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    before = os.getloadavg()
    print(f"balsam utilization: {args.packing} x {args.rounds} evaluations of {args.seconds:g} s, packed "
          f"{args.packing} per node, {args.search} search; load before {before[0]:.1f} / {before[1]:.1f} / {before[2]:.1f}",
          flush=True)
    row = utilization_run(args.seconds, args.packing, args.rounds, args.search, args.seed)
    life = row["lifetime"] or {}
    load = os.getloadavg()
    print(f"first start to last end: {row['utilization_percent']:.2f}% busy; idle node-seconds "
          + ", ".join(f"{k} {v:.1f}" for k, v in row["idle_node_seconds"].items()))
    if life:
        print(f"launcher lifetime ({life['seconds']:.1f} s): {life['utilization_percent']:.2f}% busy; idle node-seconds "
              + ", ".join(f"{k} {v:.1f}" for k, v in life["idle_node_seconds"].items()))
    print(f"launcher quit by itself: {row['launcher_quit_by_itself']}; wall {row['wall_s']:.0f} s; "
          f"load after (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; analytics in {row['analytics_dir']}")
    row["load_before"], row["load_after"], row["date"] = before, load, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(row, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
