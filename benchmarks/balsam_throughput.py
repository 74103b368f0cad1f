"""Evaluations per minute through the real Balsam launcher vs the local evaluator.

Both runs use the same search, seed and trivial run function (``polynome2.run``: no sleep, so
the figure is the pipeline's own overhead) with two packed workers per core:

* **balsam**: a real Balsam DB (Postgres) owned by an ordinary user, the search master created
  as a Balsam job (``--application AMBS``, ``node_packing_count = K``) and the launcher
  (``python -m hpcnas.balsam.launch --job-mode serial``) running it with ``K = 2 * cores + 1``
  evaluations per node, so the master takes one slot and ``2 * cores`` evaluations run at once;
* **local**: ``hpcnas hps SEARCH --evaluator local --num-workers 2*cores``.

Reported per backend: evaluations, the span from the first submit to the last end (from
results.csv), evaluations per minute over that span, the master's CPU seconds (psutil, sampled
until it exits) and its share of the machine over the span (``cpu_s / (span * cores)``) and of
one core. Needs root (the DB runs as the test user, as in the e2e tests) or an ordinary user
who can run Postgres.

Also printed: the median seconds per Balsam state of the evaluation jobs (``state_history``;
``CREATED->RUN_DONE`` is when the master sees the result), the job runner's own medians from its
``HPCNAS_TIMINGS`` lines (process start -> ``run(config)`` reached -> returned -> report stored)
and the same for 5 runs of the runner by hand against the real DB, with the exit seen from
outside. ``--balsam-pace`` sets the knobs of :mod:`hpcnas.balsam.pacing` to Balsam's own periods;
``HPCNAS_FORK_SERVER=0`` in the environment starts each evaluation as a fresh interpreter
(:mod:`hpcnas.balsam.forkserver` off). Node utilization for long evaluations:
``benchmarks/balsam_utilization.py``.

    python benchmarks/balsam_throughput.py [--max-evals 40] [--search ambs] [--balsam-pace] [--queue-ahead Q] [--json out.json]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd
import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PROBLEM = "hpcnas.benchmark.polynome2.Problem"
RUN = "hpcnas.benchmark.polynome2.run"


def span_rate(results_csv: str) -> tuple[int, float, float]:
    df = pd.read_csv(results_csv)
    span = float(df["end_time"].max() - df["submit_time"].min())
    return len(df), span, 60.0 * len(df) / span if span > 0 else float("nan")


STAGES = (("CREATED", "PREPROCESSED"), ("PREPROCESSED", "RUNNING"), ("RUNNING", "RUN_DONE"),
          ("RUN_DONE", "JOB_FINISHED"), ("CREATED", "RUN_DONE"), ("CREATED", "JOB_FINISHED"))
#: the job runner's own times (its HPCNAS_TIMINGS line), as stages
RUNNER_STAGES = (("process_start", "run_start"), ("run_start", "run_end"), ("run_end", "reported"))


def stage_medians(histories: list[str]) -> dict[str, float]:
    """Median seconds between Balsam states of the evaluation jobs (where the time goes)."""
    import statistics

    from hpcnas.balsam.jobs import parse_state_history

    spans: dict[str, list[float]] = {f"{a}->{b}": [] for a, b in STAGES}
    for history in histories:
        first: dict[str, float] = {}
        for t, state, _ in parse_state_history(history):
            first.setdefault(state, t)
        for a, b in STAGES:
            if a in first and b in first:
                spans[f"{a}->{b}"].append(first[b] - first[a])
    return {k: statistics.median(v) for k, v in spans.items() if v}


def runner_timings(out_files: list[str]) -> list[dict[str, float]]:
    """The job runner's ``HPCNAS_TIMINGS`` line of each job's ``.out`` file."""
    from hpcnas.balsam.job_runner import TIMINGS_MARKER

    found = []
    for path in out_files:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [l for l in fh if l.startswith(TIMINGS_MARKER)]
        if lines:
            found.append(json.loads(lines[-1][len(TIMINGS_MARKER):]))
    return found


def runner_medians(timings: list[dict[str, float]]) -> dict[str, float]:
    import statistics

    out = {}
    for a, b in RUNNER_STAGES + (("reported", "exit"),):
        values = [t[b] - t[a] for t in timings if t.get(a) is not None and t.get(b) is not None]
        if values:
            out[f"{a}->{b}"] = statistics.median(values)
    return out


def hand_runs(env, job: dict, runs: int = 5) -> list[dict[str, float]]:
    """The runner of a finished job run again by hand (as the DB owner, its job id set), ``runs``
    times: its own timings plus ``exit``, when this process saw it leave."""
    from hpcnas.balsam.job_runner import TIMINGS_MARKER

    found = []
    for _ in range(runs):
        proc = env.run([sys.executable, "-m", "hpcnas.balsam.job_runner", *job["args"].split()],
                       BALSAM_JOB_ID=job["pk"])
        exited = time.time()
        line = [l for l in proc.stdout.splitlines() if l.startswith(TIMINGS_MARKER)][-1]
        found.append({**json.loads(line[len(TIMINGS_MARKER):]), "exit": exited})
    return found


class CpuSampler:
    """Tracks the CPU seconds of processes matching ``predicate`` (latest sample per PID)."""

    def __init__(self, predicate) -> None:
        self.predicate = predicate
        self.cpu: dict[int, float] = {}

    def sample(self, roots: list[int] | None = None) -> None:
        procs = []
        if roots:
            for pid in roots:
                try:
                    parent = psutil.Process(pid)
                    procs += [parent, *parent.children(recursive=True)]
                except psutil.NoSuchProcess:
                    continue
        else:
            procs = list(psutil.process_iter())
        for proc in procs:
            try:
                if self.predicate(proc.cmdline()):
                    t = proc.cpu_times()
                    self.cpu[proc.pid] = t.user + t.system
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue

    @property
    def total(self) -> float:
        return sum(self.cpu.values())


def is_master(workflow_flag: str):
    def check(cmd: list[str]) -> bool:
        text = " ".join(cmd)
        return "hpcnas" in text and " hps " in f" {text} " and workflow_flag in text
    return check


def pace_knobs() -> dict[str, str]:
    """The pace knobs of :mod:`hpcnas.balsam.pacing` set in this environment (passed to the launcher)."""
    return {k: v for k, v in os.environ.items() if k in PACE_KNOBS}


PACE_KNOBS = ("HPCNAS_TRANSITION_S", "HPCNAS_JOBSOURCE_S", "HPCNAS_STATUS_BATCH_S", "HPCNAS_WORKER_S",
              "HPCNAS_FORK_SERVER", "HPCNAS_FORK_PRELOAD")
#: Balsam 0.5's own periods (``--balsam-pace``): the launcher as Balsam paces it
BALSAM_PACE = {"HPCNAS_TRANSITION_S": "5", "HPCNAS_JOBSOURCE_S": "1", "HPCNAS_STATUS_BATCH_S": "1",
               "HPCNAS_WORKER_S": "1"}


def run_balsam(search: str, max_evals: int, cores: int, seed: int, queue_ahead: int | None = None) -> dict:
    from tests.support.balsam_env import make_balsam_env

    env = make_balsam_env()
    try:
        packing = 2 * cores + 1
        wf = f"bench{int(time.time())}"
        args = (f"--evaluator balsam --problem {PROBLEM} --run {RUN} --max-evals {max_evals} "
                f"--num-evals-per-node {packing} --seed {seed} --no-progress"
                + (f" --queue-ahead {queue_ahead}" if queue_ahead is not None else ""))
        env.balsam("job", "--name", "search", "--workflow", wf, "--application", search.upper(),
                   "--node-packing-count", str(packing), "--args", args, "--yes")
        started = time.time()
        launcher = env.popen([sys.executable, "-m", "hpcnas.balsam.launch", "--wf-filter", wf,
                              "--job-mode", "serial", "--time-limit-minutes", "60"],
                             os.path.join(env.base, "launcher.log"), **pace_knobs())
        sampler = CpuSampler(is_master("--evaluator balsam"))
        state = None
        last_query = 0.0
        while time.time() - started < 1800:
            sampler.sample([launcher.pid])
            if time.time() - last_query > 3:
                last_query = time.time()
                state = env.query(f"BalsamJob.objects.get(workflow={wf!r}, name='search').state")
                if state in ("JOB_FINISHED", "FAILED", "RUN_ERROR"):
                    break
            time.sleep(0.25)
        wall = time.time() - started
        env.stop(launcher)
        if state != "JOB_FINISHED":
            raise RuntimeError(f"search job ended in state {state}")
        csv = glob.glob(os.path.join(env.db_path, "data", wf, "search_*", "results.csv"))[0]
        n, span, rate = span_rate(csv)
        histories = env.query(f"list(BalsamJob.objects.filter(workflow={wf!r}).exclude(name='search')"
                              ".values_list('state_history', flat=True))")
        outs = glob.glob(os.path.join(env.db_path, "data", wf, "eval-*", "eval-*.out"))
        job = env.query(f"[dict(pk=str(j.pk), args=j.args) for j in BalsamJob.objects.filter(workflow={wf!r})"
                        ".exclude(name='search')[:1]][0]")
        return dict(backend="balsam", workers=2 * cores, evals=n, span_s=span, wall_s=wall,
                    evals_per_min=rate, master_cpu_s=sampler.total, stages=stage_medians(histories),
                    runner=runner_medians(runner_timings(outs)), runner_by_hand=runner_medians(hand_runs(env, job)),
                    knobs=pace_knobs())
    finally:
        env.close()


def run_local(search: str, max_evals: int, cores: int, seed: int) -> dict:
    out = tempfile.mkdtemp(prefix="hpcnas-bench-local-")
    cmd = [sys.executable, "-m", "hpcnas.cli.main", "hps", search, "--evaluator", "local",
           "--problem", PROBLEM, "--run", RUN, "--max-evals", str(max_evals), "--num-workers", str(2 * cores),
           "--seed", str(seed), "--no-progress", "--output-dir", out]
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    cpu = 0.0
    while proc.poll() is None:
        try:
            t = ps.cpu_times()  # the master alone; its worker processes are children
            cpu = t.user + t.system
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    wall = time.time() - started
    if proc.returncode != 0:
        raise RuntimeError(f"local search failed: {proc.stderr.read()[-2000:]}")
    n, span, rate = span_rate(os.path.join(out, "results.csv"))
    return dict(backend="local", workers=2 * cores, evals=n, span_s=span, wall_s=wall,
                evals_per_min=rate, master_cpu_s=cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-evals", type=int, default=40)
    parser.add_argument("--search", default="ambs", choices=("ambs", "random"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--queue-ahead", type=int, default=None,
                        help="the Balsam evaluator's --queue-ahead (default: its own rule)")
    parser.add_argument("--balsam-pace", action="store_true",
                        help="run the launcher at Balsam's own polling periods (sets the HPCNAS_*_S knobs)")
    args = parser.parse_args(argv)
    if args.balsam_pace:
        os.environ.update(BALSAM_PACE)
    cores = os.cpu_count() or 1
    print(f"balsam throughput: {cores} cores, {2 * cores} packed workers (2 per core), "
          f"{args.search} search, {args.max_evals} evaluations of {RUN}", flush=True)
    rows = [run_balsam(args.search, args.max_evals, cores, args.seed, args.queue_ahead),
            run_local(args.search, args.max_evals, cores, args.seed)]
    print(f"{'backend':8s} {'workers':>7s} {'evals':>5s} {'span_s':>8s} {'wall_s':>8s} {'evals/min':>9s} "
          f"{'master_cpu_s':>12s} {'% machine':>9s} {'% 1 core':>8s}")
    for r in rows:
        r["master_share_machine"] = r["master_cpu_s"] / (r["span_s"] * cores) if r["span_s"] else float("nan")
        r["master_share_core"] = r["master_cpu_s"] / r["span_s"] if r["span_s"] else float("nan")
        print(f"{r['backend']:8s} {r['workers']:7d} {r['evals']:5d} {r['span_s']:8.1f} {r['wall_s']:8.1f} "
              f"{r['evals_per_min']:9.1f} {r['master_cpu_s']:12.2f} {100 * r['master_share_machine']:8.1f}% "
              f"{100 * r['master_share_core']:7.1f}%")
    stages = rows[0].get("stages", {})
    print("balsam evaluation job, median seconds per stage: "
          + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    print("job runner in the launcher, median seconds: "
          + (", ".join(f"{k} {v:.3f}" for k, v in rows[0].get("runner", {}).items()) or "no HPCNAS_TIMINGS lines"))
    print("job runner by hand (5 runs, real DB), median seconds: "
          + ", ".join(f"{k} {v:.3f}" for k, v in rows[0].get("runner_by_hand", {}).items()))
    if rows[0].get("knobs"):
        print("pace knobs set: " + ", ".join(f"{k}={v}" for k, v in rows[0]["knobs"].items()))
    load = os.getloadavg()
    print(f"load average during the run (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    ratio = rows[1]["evals_per_min"] / rows[0]["evals_per_min"]
    print(f"local/balsam throughput ratio: {ratio:.1f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"cores": cores, "search": args.search, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
