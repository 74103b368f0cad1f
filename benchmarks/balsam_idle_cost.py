"""What the launcher's polling costs while it has nothing to run: CPU seconds per minute.

The pace knobs of :mod:`hpcnas.balsam.pacing` shorten Balsam's polling periods; every period is
a query of the DB (transition processes, the ensemble's job source) or a message (the serial
worker to its master), paid also while no job is runnable, for instance while the search
master thinks. This starts a real Balsam DB (Postgres, as in the e2e tests) and the launcher
(``python -m hpcnas.balsam.launch --job-mode serial``) on a workflow with no job, waits
``--warmup`` seconds, then samples for ``--seconds`` the CPU seconds of the launcher's process
tree (launcher, transition processes, ensemble master and worker) and of the Postgres server,
and prints them per minute of idle time, with the knobs that were set. Knobs are read from the
environment, as the launcher reads them::

    python benchmarks/balsam_idle_cost.py [--seconds 40]
    HPCNAS_JOBSOURCE_S=0.05 HPCNAS_WORKER_S=0.05 python benchmarks/balsam_idle_cost.py
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.balsam_throughput import pace_knobs  # noqa: E402


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its live descendants."""
    total = 0.0
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return total


def server_cpu(env) -> float:
    total = 0.0
    for pid in env._server_pids():
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return total


def measure(seconds: float, warmup: float) -> dict:
    from tests.support.balsam_env import make_balsam_env

    env = make_balsam_env()
    try:
        wf = f"idle{int(time.time())}"
        launcher = env.popen([sys.executable, "-m", "hpcnas.balsam.launch", "--wf-filter", wf,
                              "--job-mode", "serial", "--time-limit-minutes", "30"],
                             os.path.join(env.base, "launcher.log"), **pace_knobs())
        time.sleep(warmup)  # a fixed wait is the measurement here: the idle launcher's steady state
        if launcher.poll() is not None:
            raise RuntimeError(f"the launcher exited during the warm-up (code {launcher.returncode})")
        cpu0, db0, t0 = tree_cpu(launcher.pid), server_cpu(env), time.time()
        time.sleep(seconds)
        cpu1, db1, t1 = tree_cpu(launcher.pid), server_cpu(env), time.time()
        alive = launcher.poll() is None
        env.stop(launcher)
        if not alive:
            raise RuntimeError("the launcher exited while idle: lower --warmup + --seconds below 120")
        minutes = (t1 - t0) / 60.0
        return dict(knobs=pace_knobs(), idle_s=t1 - t0, launcher_cpu_s_per_min=(cpu1 - cpu0) / minutes,
                    postgres_cpu_s_per_min=(db1 - db0) / minutes)
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="idle seconds sampled")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before sampling starts")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.warmup + args.seconds > 110:
        parser.error("--warmup + --seconds must stay under 110 s: an idle launcher quits after 120 s")
    figures = measure(args.seconds, args.warmup)
    knobs = " ".join(f"{k}={v}" for k, v in sorted(figures["knobs"].items())) or "(hpcnas's defaults)"
    print(f"idle launcher, {figures['idle_s']:.0f} s sampled, knobs: {knobs}")
    print(f"CPU seconds per idle minute: launcher tree {figures['launcher_cpu_s_per_min']:.2f}, "
          f"Postgres {figures['postgres_cpu_s_per_min']:.2f} "
          f"({100 * (figures['launcher_cpu_s_per_min'] + figures['postgres_cpu_s_per_min']) / 60:.1f} % of one core)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
