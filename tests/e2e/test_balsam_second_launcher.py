"""A second hpcnas launcher on the same Balsam DB and workflow is refused in one line.

Two launchers of one workflow take the same jobs (issue 18: the second one's ensemble lost its
port and left an orphan holding evaluations for minutes). The first launcher holds a Postgres
advisory lock for its whole life (:mod:`hpcnas.balsam.launcher_lock`); the DB drops it the
moment that process dies, even by ``kill -9``, so no ghost refuses the next launcher.
"""
from __future__ import annotations

import signal
import sys
import time

import pytest

from tests.support.balsam_env import search_args

pytestmark = [pytest.mark.e2e, pytest.mark.balsam]

LIMIT = 180.0

HOLDERS = (
    "import psycopg2, os\nfrom hpcnas.balsam.server_info import connection_params\n"
    "conn = psycopg2.connect(**connection_params(os.environ['BALSAM_DB_PATH']))\ncur = conn.cursor()\n"
    "cur.execute(\"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'hpcnas-launcher%%'\")\n"
    "print('HOLDERS', cur.fetchone()[0])\n"
)


def _acquire(workflow: str) -> str:
    return ("import os\nfrom hpcnas.balsam.launcher_lock import LauncherLock\n"
            f"lock = LauncherLock(os.environ['BALSAM_DB_PATH'], {workflow!r})\nlock.acquire()\nprint('ACQUIRED')\n"
            "lock.release()\n")


def _holders(env) -> int:
    return int(env.python(HOLDERS).split("HOLDERS")[-1])


def test_a_second_launcher_of_the_same_workflow_is_refused_and_a_dead_one_refuses_nothing(balsam_env, balsam_workflow):
    env, wf = balsam_env, balsam_workflow
    env.balsam("job", "--name", "search", "--workflow", wf, "--application", "AMBS", "--node-packing-count", "1000",
               "--args", search_args(4, "sleep_or_crash"), "--yes")
    assert _holders(env) == 0
    first = env.start_launcher(wf, "serial", log_name=f"launcher-first-{wf}.log", HPCNAS_TEST_SLEEP="60")
    try:
        deadline = time.monotonic() + LIMIT
        while _holders(env) == 0:
            assert first.poll() is None, "the first launcher ended before it held its lock"
            assert time.monotonic() < deadline, f"the first launcher held no lock after {LIMIT} s"
            time.sleep(0.5)
        launch = [sys.executable, "-m", "hpcnas.balsam.launch", "--job-mode", "serial", "--time-limit-minutes", "5"]
        second = env.run([*launch, "--wf-filter", wf], check=False, timeout=LIMIT)
        assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
        (line,) = second.stderr.strip().splitlines()
        assert line.startswith(f"hpcnas: error: a launcher of workflow {wf} already runs on this DB (")
        assert " pid " in line and "HPCNAS_LAUNCHER_LOCK=0" in line
        every = env.run([*launch, "--consume-all"], check=False, timeout=LIMIT)
        assert every.returncode == 2 and "another launcher already runs on this DB" in every.stderr, every.stderr
        assert "ACQUIRED" in env.python(_acquire(f"{wf}-other"))  # other workflows run side by side
        assert first.poll() is None  # the refused launchers stopped nothing
    finally:
        env.stop(first, signal.SIGKILL)  # no clean exit: the DB must still drop the lock
    assert "ACQUIRED" in env.python(_acquire(wf))
