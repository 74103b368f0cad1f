"""Flows: making and activating a Balsam DB as the DeepHyper guide does.

* ``hpcnas balsam-init testdb`` then ``source balsamactivate testdb`` (the machine's Postgres on
  ``PATH``): the DB is served by the binaries that made it, and balsam-init's last line says
  how to activate it.
* Stock ``balsam init`` (with the binaries ``hpcnas balsam-env`` supplies) then
  ``hpcnas balsam-harden`` in a new shell whose ``PATH`` has another Postgres version first:
  hardening, starting and stopping pick the binaries of the DB's ``PG_VERSION``.
"""
from __future__ import annotations

import os
import re

import pytest

from tests.flows.conftest import transcript

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]


def pg_version(db: str) -> str:
    with open(os.path.join(db, "balsamdb", "PG_VERSION")) as fh:
        return fh.read().strip()


def test_balsam_init_then_source_balsamactivate(flows):
    proc = flows.init
    assert proc.returncode == 0, transcript(proc)
    out = proc.stdout + proc.stderr
    assert "incompatible" not in out and "Traceback" not in out, transcript(proc)
    init_lines = [l for l in proc.stdout.splitlines() if l.startswith("hpcnas:") and "testdb" in l]
    assert init_lines and init_lines[0].endswith("source balsamactivate " + flows.db), transcript(proc)
    assert "Connected to" in out or "Launching Balsam DB server" in out, transcript(proc)
    # the DB is served by the Postgres the user's shell finds (the one balsamactivate runs)
    which = flows.sh("pg_ctl --version", activate=False)
    major = re.search(r"\) (\d+)", which.stdout).group(1)
    assert pg_version(flows.db) == major


def test_stock_balsam_init_then_balsam_harden_in_a_new_shell(flows):
    # shell 1: the guide's stock `balsam init`, with binaries hpcnas supplies when PATH's cannot serve it
    made = flows.sh('eval "$(hpcnas balsam-env)"\nbalsam init stockdb\n', activate=False, timeout=300)
    assert made.returncode == 0 and "Successfully created" in made.stdout, transcript(made)
    db = os.path.join(flows.env.home, "stockdb")
    version = pg_version(db)
    # the new shell's PATH finds another major version first: the mismatch the flow must survive
    path_major = re.search(r"\) (\d+)", flows.sh("pg_ctl --version", activate=False).stdout).group(1)
    assert version != path_major, "hpcnas balsam-env should supply the wheel's Postgres (another version) here"
    # shell 2: a new login (PATH as the user has it), harden, then activate as harden's last line says
    harden = flows.sh("hpcnas balsam-harden stockdb\n", activate=False)
    assert harden.returncode == 0, transcript(harden)
    last = harden.stdout.strip().splitlines()[-1]
    activate = last.split("start it with: ", 1)[-1].rstrip(")")
    assert "source balsamactivate" in activate, last
    used = flows.sh(f"{activate}\nbalsam ls\nhpcnas balsam-apps\npg_ctl --version\n", activate=False)
    assert used.returncode == 0 and "incompatible" not in used.stdout + used.stderr, transcript(used)
    assert "AMBS" in used.stdout and f") {version}." in used.stdout, transcript(used)
    stop = flows.sh(f"python -c \"from hpcnas.balsam.db import stop_db; stop_db('{db}')\"", activate=False)
    assert stop.returncode == 0, transcript(stop)
