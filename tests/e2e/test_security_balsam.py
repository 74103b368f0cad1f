"""Security on a real Balsam DB (issue 7).

* The values of ``tests.unit.test_security.NASTY`` (``"; rm -rf ~; echo "``, ``$(touch ...)``,
  backticks, separators, quotes, a newline) reach the run function as the exact strings through
  Balsam jobs run by the real launcher (MPI mode: each job started by ``mpirun``), and nothing runs: no marker file anywhere under the
  DB owner's folders, the canary in the owner's HOME survives.
* The Postgres server of the DB that hpcnas created (``balsam init`` + hardening) listens only on
  this host's addresses, accepts no ``trust`` anywhere, peer auth on the Unix socket and a password
  on TCP: a TCP connection without or with a wrong password is refused.

(MPI-mode exact strings are ``tests/e2e/test_balsam_mpi.py``; a stock ``balsam init`` DB
hardened in place is ``tests/e2e/test_balsam_db.py``.)
"""
from __future__ import annotations

import csv
import ipaddress
import json
import os
import socket
import sys

import psutil
import pytest

from tests.unit.test_security import NASTY, markers_under, recorded_texts

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]


def test_nasty_values_reach_run_exactly_and_execute_nothing_balsam(balsam_env, balsam_workflow) -> None:
    env, wf = balsam_env, balsam_workflow
    canary = os.path.join(env.home, "canary.txt")
    with open(canary, "w") as fh:
        fh.write("still here\n")
    os.chmod(canary, 0o644)
    out = os.path.join(env.home, f"out-{wf}")
    launcher = env.start_launcher(wf, "mpi")
    try:
        proc = env.hpcnas(
            "hps", "random", "--evaluator", "balsam", "--workflow", wf, "--num-workers", "1",
            "--problem", "tests.unit.test_security.SecProblem",
            "--run", "tests.unit.test_security.exact_text", "--max-evals", str(len(NASTY)),
            "--no-progress", "--output-dir", out, "--timeout", "400", check=False, timeout=500,
        )
    finally:
        env.stop(launcher)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    with open(os.path.join(out, "results.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(NASTY)
    assert all(r["status"] == "DONE" for r in rows), [(r["p:text"], r["error"]) for r in rows]
    assert recorded_texts(os.path.join(out, "results.csv")) == sorted((t, float(i)) for i, t in enumerate(NASTY))
    jobs = env.query(f"list(BalsamJob.objects.filter(workflow={wf!r}).values('args', 'data'))")
    assert sorted(j["data"]["hpcnas_eval"]["config"]["text"] for j in jobs) == sorted(NASTY)
    assert not any(c in j["args"] for j in jobs for c in ('"', "'", ";", "`", "$", "~", "\n"))
    assert open(canary).read() == "still here\n"
    assert markers_under(env.base) == []


def _host_addresses() -> set[str]:
    addresses = {"127.0.0.1", "::1"}
    for _family, _, _, _, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
        addresses.add(sockaddr[0])
    for nics in psutil.net_if_addrs().values():  # "samehost" = any address of this machine
        addresses.update(a.address.split("%")[0] for a in nics if a.family in (socket.AF_INET, socket.AF_INET6))
    return addresses


def test_postgres_of_the_hpcnas_db_is_not_open(balsam_env) -> None:
    env = balsam_env
    data_dir = os.path.join(env.db_path, "balsamdb")
    with open(os.path.join(data_dir, "pg_hba.conf")) as fh:
        hba = [l.split("#")[0].split() for l in fh if l.split("#")[0].strip()]
    assert hba, "empty pg_hba.conf"
    assert not [l for l in hba if "trust" in l], hba
    for line in hba:
        if line[0] == "local":
            assert line[-1] in ("peer", "scram-sha-256"), line
        else:
            assert line[0] == "host" and line[-1] == "scram-sha-256", line
            assert line[3] == "samehost" or ipaddress.ip_network(line[3]).prefixlen > 0, line  # never 0.0.0.0/0

    with open(os.path.join(data_dir, "postgresql.conf")) as fh:
        listen = [l.split("#")[0].strip() for l in fh if l.strip().startswith("listen_addresses")]
    assert listen[-1] == f"listen_addresses = 'localhost,{socket.gethostname()}'", listen

    # what the running server really listens on: this host's addresses only, never the wildcard
    with open(os.path.join(data_dir, "postmaster.pid")) as fh:
        pid = int(fh.readline())
    listening = {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    assert listening and not listening & {"0.0.0.0", "::"}, listening
    assert listening <= _host_addresses(), listening

    with open(os.path.join(env.db_path, "server-info")) as fh:
        info = json.load(fh)
    assert oct(os.stat(os.path.join(env.db_path, "server-info")).st_mode & 0o777) == "0o600"
    connect = (
        "import sys, psycopg2\n"
        "try:\n"
        f"    psycopg2.connect(host={info['host']!r}, port={int(info['port'])}, dbname='balsam', password=sys.argv[1] or None,"
        " connect_timeout=10).close()\n"
        "    print('CONNECTED')\n"
        "except psycopg2.OperationalError as err:\n"
        "    print('REFUSED', str(err).strip().splitlines()[-1])\n"
    )
    for password in ("", "wrong-password"):
        out = env.run([sys.executable, "-c", connect, password], PGPASSWORD="", PGPASSFILE="/dev/null").stdout
        assert out.startswith("REFUSED") and "password" in out, out
    out = env.run([sys.executable, "-c", connect, info["password"]]).stdout
    assert out.startswith("CONNECTED"), out
