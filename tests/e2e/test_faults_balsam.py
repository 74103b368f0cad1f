"""Fault injection on a real Balsam DB (Postgres) with the real Balsam launcher (issue 7).

The search master runs as its own process (``hpcnas hps random --evaluator balsam``, as the DB
owner) while ``balsam launcher --job-mode mpi`` runs the evaluations, so a fault can hit the
master, the launcher or the DB separately. (MPI mode, one evaluation at a time on this one-node
workstation: Balsam's serial mode binds the fixed port 19876 on the node, so serial launchers of
concurrent test sessions on one host would talk to each other's ensembles.)

* ``kill -9`` of the master alone, then the same command again: finished evaluations are read
  back, pending and running jobs adopted, and the search ends with exactly ``max-evals`` distinct
  evaluations -- no job created twice, none lost.
* Postgres stopped for ``HPCNAS_OUTAGE_S`` seconds (default 30, ``pg_ctl stop -m fast`` as the DB
  owner, then ``pg_ctl start`` on the same port): the master waits for the DB, reconnects and goes
  on; Balsam's own launcher does not survive the outage, so ``python -m hpcnas.balsam.launch``
  (its supervisor) stops it once the DB is back, releases its jobs and starts a new one, with no
  help from the test; the search still ends with exactly ``max-evals`` distinct evaluations.
* A Postgres database without Balsam's tables (another schema) is refused with one line.

(``kill -9`` of the whole launcher, master included, is ``tests/e2e/test_balsam_resume.py``.)
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.test_faults_local import record_outcome

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

OUTAGE_S = float(os.environ.get("HPCNAS_OUTAGE_S", "30"))
JOB_MODE = "mpi"
PROBLEM = ["--problem", "tests.support.balsam_problems.Problem", "--run", "tests.support.balsam_problems.sleep_or_crash"]


def rows(path: str) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def start_master(env, wf: str, out: str, max_evals: int, log: str) -> subprocess.Popen:
    return env.popen(
        [sys.executable, "-m", "hpcnas.cli.main", "hps", "random", *PROBLEM, "--evaluator", "balsam",
         "--workflow", wf, "--max-evals", str(max_evals), "--num-workers", "1",
         "--seed", "4", "--no-progress", "--output-dir", out],
        log,
    )


def wait_rows(path: str, n: int, proc: subprocess.Popen, log: str, limit: float = 240) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if len(rows(path)) >= n:
            return
        assert proc.poll() is None, open(log).read()[-3000:]
        time.sleep(0.3)
    pytest.fail(f"fewer than {n} rows in {path} after {limit} s: {open(log).read()[-2000:]}")


def kill_9(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group only (``BalsamEnv.stop`` also ends every other process of the
    test session, which would take the launcher down with the master and vice versa)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def diagnose(env, wf: str) -> str:
    """Launcher logs and job states of ``wf``, for failure messages."""
    logs = sorted(f for f in os.listdir(env.base) if f.startswith(f"launcher-{wf}"))
    text = "".join(f"\n--- {f}\n" + open(os.path.join(env.base, f), errors="replace").read()[-1500:] for f in logs)
    try:
        states = [(j["name"], j["state"]) for j in eval_jobs(env, wf)]
    except Exception as err:  # noqa: BLE001 - diagnostics only
        states = [("query failed", str(err)[-300:])]
    return f"{text}\n--- jobs {states}"


def wait_exit(proc: subprocess.Popen, log: str, limit: float, env=None, wf: str = "") -> str:
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the master did not finish in {limit} s: {open(log).read()[-3000:]}"
                    + (diagnose(env, wf) if env else ""))
    text = open(log).read()
    assert proc.returncode == 0, text[-3000:] + (diagnose(env, wf) if env else "")
    return text


def eval_jobs(env, wf: str) -> list[dict]:
    return env.query(
        f"list(BalsamJob.objects.filter(workflow={wf!r}, name__startswith='eval-').values('name', 'state', 'data'))"
    )


def check_exactly(env, wf: str, out: str, max_evals: int) -> tuple[list[dict[str, str]], list[str]]:
    """results.csv and the DB both hold exactly ``max_evals`` distinct evaluations, the crash once."""
    data = rows(os.path.join(out, "results.csv"))
    jobs = eval_jobs(env, wf)
    job_ids = sorted(j["data"]["hpcnas_eval"]["job_id"] for j in jobs)
    assert len(jobs) == max_evals and len(set(job_ids)) == max_evals, [j["name"] for j in jobs]
    assert {j["state"] for j in jobs} <= {"JOB_FINISHED", "FAILED", "RUN_DONE", "RUN_ERROR"}
    assert len(data) == max_evals and sorted(r["job_id"] for r in data) == job_ids
    assert len({round(float(r["p:x"]), 12) for r in data}) == max_evals
    assert sum(r["status"] != "DONE" for r in data) == 1  # the crashing starting point, once
    return data, job_ids


@pytest.fixture
def launcher(balsam_env, balsam_workflow):
    procs = []

    def start(tag: str = "1") -> subprocess.Popen:
        proc = balsam_env.start_launcher(balsam_workflow, JOB_MODE, log_name=f"launcher-{balsam_workflow}-{tag}.log")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        balsam_env.stop(proc, timeout=20)


def test_kill_9_master_then_restart_gives_exactly_max_evals(balsam_env, balsam_workflow, launcher) -> None:
    env, wf, max_evals = balsam_env, balsam_workflow, 7
    out = os.path.join(env.home, f"out-{wf}")
    log = os.path.join(env.base, f"master-{wf}-1.log")
    launcher()
    master = start_master(env, wf, out, max_evals, log)
    wait_rows(os.path.join(out, "results.csv"), 2, master, log)
    kill_9(master)  # kill -9 the master's process group; the launcher runs on
    before = rows(os.path.join(out, "results.csv"))
    assert 2 <= len(before) < max_evals
    jobs_at_kill = {j["name"] for j in eval_jobs(env, wf)}

    log2 = os.path.join(env.base, f"master-{wf}-2.log")
    text = wait_exit(start_master(env, wf, out, max_evals, log2), log2, 300, env, wf)
    assert f"({len(before)} resumed)" in text
    data, db_ids = check_exactly(env, wf, out, max_evals)
    assert data[: len(before)] == before
    assert jobs_at_kill <= {j["name"] for j in eval_jobs(env, wf)}  # adopted, not re-created
    record_outcome("kill -9 master (balsam) + restart", 1, max_evals, [r["job_id"] for r in data], db_ids)


def _pg_ctl(env, *args: str) -> subprocess.CompletedProcess:
    return env.run(["pg_ctl", "-D", os.path.join(env.db_path, "balsamdb"), *args], check=False, timeout=120)


def test_postgres_outage_master_and_launcher_go_on(balsam_env, balsam_workflow, launcher) -> None:
    env, wf, max_evals = balsam_env, balsam_workflow, 7
    out = os.path.join(env.home, f"out-{wf}")
    log = os.path.join(env.base, f"master-{wf}-1.log")
    launcher("1")
    master = start_master(env, wf, out, max_evals, log)
    wait_rows(os.path.join(out, "results.csv"), 2, master, log)

    stopped = _pg_ctl(env, "-w", "-m", "fast", "stop")
    assert stopped.returncode == 0, stopped.stderr
    try:
        time.sleep(OUTAGE_S)
        assert master.poll() is None, open(log).read()[-3000:]  # the master waits for the DB
    finally:
        started = _pg_ctl(env, "-w", "-l", os.path.join(env.base, "postgres-restart.log"), "start")
    assert started.returncode == 0, started.stderr

    # Balsam 0.x's launcher does not survive a DB outage (its transition processes die on the lost
    # connection while the launcher hangs on): hpcnas's launcher supervisor restarts it on its own.
    text = wait_exit(master, log, 300, env, wf)
    assert "Balsam DB" in text and "reconnected" in text, text[-3000:]
    data, db_ids = check_exactly(env, wf, out, max_evals)
    launcher_log = open(os.path.join(env.base, f"launcher-{wf}-1.log"), errors="replace").read()
    assert "the Balsam DB answers again after" in launcher_log and "starting a new launcher" in launcher_log, \
        launcher_log[-3000:]
    record_outcome(f"Postgres stopped {OUTAGE_S:g} s (master retries; launcher restarted by its supervisor)", 1, max_evals,
                   [r["job_id"] for r in data], db_ids)


# --------------------------------------------------------------------- bad inputs on real DBs
@pytest.fixture
def foreign_db(balsam_env):
    """A running Postgres (scram on loopback TCP) with an empty ``balsam`` database: not Balsam's schema."""
    import socket

    env = balsam_env
    folder = os.path.join(env.home, f"foreign-{os.getpid()}-{time.monotonic_ns()}")
    data = os.path.join(folder, "balsamdb")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    password = "foreign-db-password-123"
    env.python(f"import os; os.makedirs({folder!r}); open(os.path.join({folder!r}, 'pw'), 'w').write({password!r})")
    env.run(["initdb", "-D", data, "--auth-local=peer", "--auth-host=scram-sha-256", f"--pwfile={folder}/pw"],
            timeout=180)
    env.run(["pg_ctl", "-D", data, "-w", "-l", os.path.join(folder, "pg.log"), "-o",
             f"-p {port} -c listen_addresses=127.0.0.1 -k {data}", "start"], timeout=120)
    try:
        env.run(["createdb", "-h", "127.0.0.1", "-p", str(port), "balsam"], PGPASSWORD=password)
        env.python(f"import json; json.dump({{'host': '127.0.0.1', 'port': {port}, 'password': {password!r}}}, "
                   f"open({os.path.join(folder, 'server-info')!r}, 'w'))")
        yield folder
    finally:
        env.run(["pg_ctl", "-D", data, "-w", "-m", "immediate", "stop"], check=False, timeout=120)


def _one_line(proc: subprocess.CompletedProcess, pattern: str) -> None:
    import re

    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcnas: error: "), proc.stderr[-3000:]
    assert re.fullmatch(pattern, lines[0][len("hpcnas: error: "):]), lines[0]


def test_a_postgres_db_without_balsam_tables_is_one_line(balsam_env, foreign_db) -> None:
    env = balsam_env
    proc = env.hpcnas("hps", "random", *PROBLEM, "--evaluator", "balsam", "--max-evals", "2",
                      "--output-dir", os.path.join(foreign_db, "out"), check=False, BALSAM_DB_PATH=foreign_db)
    _one_line(proc, r"the DB at .*/foreign-[\d-]+ answers but is not a Balsam 0\.x job database "
                    r"\(relation \"core_balsamjob\" does not exist\): point BALSAM_DB_PATH at a DB made by "
                    r"balsam init / hpcnas balsam-init")
    proc = env.run([sys.executable, "-m", "hpcnas.analytics.cli", "utilization", "--db", foreign_db, "--workflow",
                    "x", "-o", os.path.join(foreign_db, "an")], check=False)
    _one_line(proc, r"the DB at '.*/foreign-[\d-]+' answers but is not a Balsam 0\.x job database "
                    r"\(relation \"core_balsamjob\" does not exist\): give --db a DB made by balsam init / hpcnas balsam-init")


def test_analytics_unknown_workflow_is_one_line(balsam_env) -> None:
    env = balsam_env
    proc = env.run([sys.executable, "-m", "hpcnas.analytics.cli", "utilization", "--workflow", "no-such-wf",
                    "-o", os.path.join(env.home, "an-unknown")], check=False)
    _one_line(proc, r"unknown workflow 'no-such-wf' in the Balsam DB at '.*': (choose one of .*|the DB holds no job yet; check --db)")


# --------------------------------------------------------------------- Postgres crash (issue 12)
CRASH_SCRIPT = r"""
import json, os, signal, sys, time
from hpcnas.balsam.connect import connect
db = connect()
with db.connection.cursor() as cur:
    cur.execute("SHOW synchronous_commit")
    sync = cur.fetchone()[0]
    cur.execute("SHOW fsync")
    fsync = cur.fetchone()[0]
tag = sys.argv[1]
db.BalsamJob.objects.bulk_create([db.BalsamJob(name=f"crash-{tag}-{i}", workflow="crash", application="none")
                                  for i in range(5)])
count = db.BalsamJob.objects.count()
# a crash right after the commit returned: SIGKILL the postmaster and every server process at once
data = os.path.join(os.environ["BALSAM_DB_PATH"], "balsamdb")
main = int(open(os.path.join(data, "postmaster.pid")).readline())
pids = [main]
for name in os.listdir("/proc"):
    try:
        if name.isdigit() and int(open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()[1]) == main:
            pids.append(int(name))
    except (OSError, ValueError, IndexError):
        pass
for pid in pids:
    os.kill(pid, signal.SIGKILL)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
    time.sleep(0.05)  # gone, zombies reaped: Postgres refuses to start while the old PID exists
print("JSON:" + json.dumps({"sync": sync, "fsync": fsync, "count": count}))
"""


def test_postgres_crash_keeps_committed_jobs(balsam_env) -> None:
    """kill -9 of the Postgres server right after a commit loses nothing (``synchronous_commit = on``)."""
    env = balsam_env
    db = os.path.join(env.home, f"crashdb-{time.monotonic_ns()}")
    env.run([sys.executable, "-c", f"from hpcnas.balsam.db import init_db, start_db; init_db({db!r}); start_db({db!r})"],
            timeout=180, BALSAM_DB_PATH="")
    # a line added after hpcnas's (a user, a later tool): ALTER SYSTEM (postgresql.auto.conf) still wins
    env.python(f"open({os.path.join(db, 'balsamdb', 'postgresql.conf')!r}, 'a').write('synchronous_commit=off\\n')")
    try:
        for round_ in range(1, 4):
            out = env.run([sys.executable, "-c", CRASH_SCRIPT, str(round_)], timeout=120, BALSAM_DB_PATH=db).stdout
            seen = json.loads([l for l in out.splitlines() if l.startswith("JSON:")][-1][5:])
            assert seen["sync"] == "on" and seen["fsync"] == "on", seen
            assert seen["count"] == 5 * round_, seen
            started = env.run(["pg_ctl", "-D", os.path.join(db, "balsamdb"), "-w", "-l",
                               os.path.join(db, "restart.log"), "start"], check=False, timeout=120)
            assert started.returncode == 0, started.stdout + started.stderr
            out = env.run([sys.executable, "-c", "import json; from hpcnas.balsam.connect import connect; print("
                           "'JSON:' + json.dumps(list(connect().BalsamJob.objects.values_list('name', flat=True))))"],
                          BALSAM_DB_PATH=db).stdout
            names = json.loads([l for l in out.splitlines() if l.startswith("JSON:")][-1][5:])
            assert len(names) == 5 * round_, f"round {round_}: committed jobs lost in the crash: {names}"
    finally:
        env.run([sys.executable, "-c", f"from hpcnas.balsam.db import stop_db; stop_db({db!r})"],
                check=False, timeout=120, BALSAM_DB_PATH="")
    record_outcome("Postgres server kill -9 right after jobs were committed, pg_ctl start (3 rounds)", 3, 15, names)
