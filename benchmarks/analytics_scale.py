"""Scale of hpcnas-analytics: ``utilization`` and ``search`` on 100,000 jobs.

Target (issue 4): each command under 10 s and under 1 GiB peak RSS.

What it does:

1. simulates a search of ``--jobs`` evaluations on ``--nodes`` nodes packed
   ``--packing`` jobs per node (greedy scheduler, 1-3 s launch latency, 3 % errors,
   1 % timeouts) and writes the Balsam state histories and a matching ``results.csv``;
2. bulk-inserts the jobs into a real Balsam DB with one ``COPY`` (``--db PATH``, or a fresh
   DB made like the test fixture: owned by an ordinary user when run as root);
3. runs ``hpcnas-analytics utilization`` (DB) and ``hpcnas-analytics search`` (results.csv)
   each in a fresh process and prints wall seconds (process start to exit, imports
   included), CPU seconds (user + system: what the wall time would be on an idle machine
   with one core) and peak RSS of that process. The 10 s limit is checked on wall time;
   load average is printed because a shared machine inflates wall time.

Run from the repository root: ``python benchmarks/analytics_scale.py [--jobs 100000]``.
"""
from __future__ import annotations

import argparse
import csv
import heapq
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

T0 = 1_767_225_600.0  # 2026-01-01 UTC
LIMIT_S, LIMIT_MIB = 10.0, 1024.0

_MEASURE = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": proc.returncode, "wall_s": wall, "peak_rss_mib": ru.ru_maxrss / 1024.0,
                  "cpu_s": ru.ru_utime + ru.ru_stime,
                  "stdout": proc.stdout[-2000:], "stderr": proc.stderr[-2000:]}))
"""


def simulate(n: int, nodes: int, packing: int, seed: int = 0) -> pd.DataFrame:
    """Per job: submit, start, end, final kind; a greedy schedule on nodes*packing slots."""
    rng = np.random.default_rng(seed)
    slots = nodes * packing
    duration = rng.uniform(60.0, 600.0, n)
    latency = rng.uniform(1.0, 3.0, n)
    kind = rng.choice(["done", "error", "timeout"], size=n, p=[0.96, 0.03, 0.01])
    # the master submits a batch of ``slots`` first, then one job per finished job
    free = [T0] * slots
    heapq.heapify(free)
    submit = np.empty(n)
    start = np.empty(n)
    end = np.empty(n)
    for i in range(n):
        slot_free = heapq.heappop(free)
        submit[i] = T0 if i < slots else slot_free
        start[i] = max(slot_free, submit[i]) + latency[i]
        end[i] = start[i] + duration[i]
        heapq.heappush(free, end[i])
    return pd.DataFrame({"submit": submit, "start": start, "end": end, "kind": kind})


def _stamps(t: np.ndarray) -> np.ndarray:
    us = np.round(t * 1e6).astype("int64").astype("datetime64[us]")
    iso = np.datetime_as_string(us, unit="us")  # YYYY-MM-DDTHH:MM:SS.ffffff
    s = pd.Series(iso)
    return (s.str[5:7] + "-" + s.str[8:10] + "-" + s.str[0:4] + " " + s.str[11:]).to_numpy()


def histories(sim: pd.DataFrame) -> np.ndarray:
    """Balsam ``state_history`` text of each job, as Balsam's history_line() writes it."""
    end_state = sim["kind"].map({"done": "RUN_DONE", "error": "RUN_ERROR",
                                 "timeout": "RUN_TIMEOUT"})
    final = sim["kind"].map({"done": "JOB_FINISHED", "error": "FAILED", "timeout": "FAILED"})
    steps = [(sim["submit"], "CREATED"), (sim["submit"] + 0.2, "READY"),
             (sim["submit"] + 0.4, "STAGED_IN"), (sim["submit"] + 0.6, "PREPROCESSED"),
             (sim["start"], "RUNNING"), (sim["end"], end_state), (sim["end"] + 0.5, final)]
    text = pd.Series([""] * len(sim))
    for times, state in steps:
        stamp = pd.Series(_stamps(times.to_numpy()))
        st = state if isinstance(state, str) else state.reset_index(drop=True)
        line = ("\n[" + stamp + " " + st + "] ").str.rjust(46)
        text = text + line
    return text.to_numpy()


def results_csv(sim: pd.DataFrame, path: str, seed: int = 0) -> None:
    rng = np.random.default_rng(seed + 1)
    n = len(sim)
    status = sim["kind"].map({"done": "DONE", "error": "FAILED", "timeout": "TIMEOUT"})
    objective = np.where(status == "DONE", rng.normal(0.7, 0.1, n), np.nan)
    pd.DataFrame({
        "p:lr": rng.uniform(1e-4, 1e-1, n), "p:units": rng.integers(8, 512, n),
        "p:activation": rng.choice(["relu", "tanh", "swish"], n),
        "job_id": [uuid.UUID(int=i).hex[:12] for i in range(n)],
        "objective": objective, "status": status, "error": "",
        "submit_time": sim["submit"], "start_time": sim["start"], "end_time": sim["end"],
        "duration": sim["end"] - sim["start"], "worker": "w",
    }).to_csv(path, index=False)


COPY_COLUMNS = ("job_id, workflow, name, description, lock, tick, parents, input_files, "
                "stage_in_url, stage_out_files, stage_out_url, wall_time_minutes, num_nodes, "
                "coschedule_num_nodes, ranks_per_node, cpu_affinity, threads_per_rank, "
                "threads_per_core, node_packing_count, environ_vars, mpi_flags, application, "
                "args, user_workdir, wait_for_parents, post_error_handler, "
                "post_timeout_handler, auto_timeout_retry, state, state_history, data")


def insert_jobs(db_path: str, workflow: str, sim: pd.DataFrame, packing: int) -> float:
    """One COPY of every job into core_balsamjob (as the DB owner); returns seconds."""
    from hpcnas.analytics.balsam_db import connect

    n = len(sim)
    final = sim["kind"].map({"done": "JOB_FINISHED", "error": "FAILED", "timeout": "FAILED"})
    now = datetime.now(timezone.utc).isoformat()
    frame = pd.DataFrame({
        "job_id": [str(uuid.uuid4()) for _ in range(n)], "workflow": workflow,
        "name": [f"task{i}" for i in range(n)], "description": "", "lock": "", "tick": now,
        "parents": "[]", "input_files": "", "stage_in_url": "", "stage_out_files": "",
        "stage_out_url": "", "wall_time_minutes": 1, "num_nodes": 1,
        "coschedule_num_nodes": 0, "ranks_per_node": 1, "cpu_affinity": "none",
        "threads_per_rank": 1, "threads_per_core": 1, "node_packing_count": packing,
        "environ_vars": "", "mpi_flags": "", "application": "bench", "args": "",
        "user_workdir": "", "wait_for_parents": True, "post_error_handler": False,
        "post_timeout_handler": False, "auto_timeout_retry": True, "state": final,
        "state_history": histories(sim), "data": "{}",
    })
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, quoting=csv.QUOTE_ALL)  # "" is not NULL
    buf.seek(0)
    t = time.perf_counter()
    conn = connect(db_path)
    try:
        with conn.cursor() as cur:
            cur.copy_expert(f"COPY core_balsamjob ({COPY_COLUMNS}) FROM STDIN WITH (FORMAT csv)",
                            buf)
        conn.commit()
    finally:
        conn.close()
    return time.perf_counter() - t


def measure(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True,
                         text=True, cwd=ROOT)
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--packing", type=int, default=2)
    parser.add_argument("--db", default=None, help="a running Balsam DB (default: a fresh one)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="hpcnas-analytics-scale-")
    t = time.perf_counter()
    sim = simulate(args.jobs, args.nodes, args.packing)
    results = os.path.join(work, "results.csv")
    results_csv(sim, results)
    print(f"simulated {args.jobs} jobs on {args.nodes} nodes x {args.packing} "
          f"in {time.perf_counter() - t:.1f} s")

    env = None
    db_path = args.db
    if db_path is None:
        from tests.support.balsam_env import make_balsam_env

        t = time.perf_counter()
        env = make_balsam_env()
        db_path = env.db_path
        print(f"created Balsam DB {db_path} in {time.perf_counter() - t:.1f} s")
    try:
        workflow = f"scale{uuid.uuid4().hex[:6]}"
        secs = insert_jobs(db_path, workflow, sim, args.packing)
        print(f"inserted {args.jobs} BalsamJob rows (one COPY) in {secs:.1f} s")
        cli = [sys.executable, "-m", "hpcnas.analytics.cli"]
        runs = {
            "utilization (Balsam DB)": cli + ["utilization", "--db", db_path, "--workflow",
                                              workflow, "--nodes", str(args.nodes),
                                              "-o", os.path.join(work, "util")],
            "search (results.csv)": cli + ["search", results, "-o", os.path.join(work, "search")],
        }
        ok = True
        print(f"load average before measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for name, argv in runs.items():
            m = measure(argv)
            within = m["rc"] == 0 and m["wall_s"] < LIMIT_S and m["peak_rss_mib"] < LIMIT_MIB
            ok &= within
            print(f"{name:26s} {args.jobs} jobs: {m['wall_s']:6.2f} s wall "
                  f"({m['cpu_s']:.2f} s CPU), peak RSS "
                  f"{m['peak_rss_mib']:7.1f} MiB, rc {m['rc']} "
                  f"[{'ok' if within else 'OVER LIMIT'}: < {LIMIT_S:g} s, < {LIMIT_MIB:g} MiB]")
            if m["rc"] != 0:
                print(m["stderr"])
            else:
                print("   " + m["stdout"].strip().splitlines()[0])
        with open(os.path.join(work, "util", "utilization.json")) as fh:
            util = json.load(fh)
        expect = int(args.jobs)
        print(f"check: {util['num_runs']} runs read (expected {expect}), utilization "
              f"{util['utilization_percent']:.2f}%")
        ok &= util["num_runs"] == expect
        print(f"outputs in {work}")
        return 0 if ok else 1
    finally:
        if env is not None:
            env.close()


if __name__ == "__main__":
    sys.exit(main())
