"""Fixtures of the user-flow tests: the users' own shell commands on real Postgres and Balsam.

Each flow test is a shell transcript (``bash``) of the commands a DeepHyper user types, with
only the package names changed, run as an ordinary user (``hpcnastest`` when the tests run as
root) whose ``PATH`` is a user's: the venv's ``bin`` first (an activated venv), then the
system's folders, so ``pg_ctl`` is the machine's Postgres as in a user's shell.

``flows`` (session): one DB for every flow, made by the first flow itself
(``hpcnas balsam-init testdb`` then ``source balsamactivate testdb``); its transcript is kept
as ``flows.init`` for the test that checks it.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Iterator

import pytest

from tests.support.components import require

VENV_BIN = os.path.dirname(sys.executable)
#: a user's PATH: the activated venv, then the system (its Postgres, /usr/local/bin first)
USER_PATH = os.pathsep.join([VENV_BIN, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])


@dataclass
class Flows:
    env: "object"  # tests.support.balsam_env.BalsamEnv
    init: "object"  # the CompletedProcess of the balsam-init transcript
    db: str

    def sh(self, script: str, timeout: float = 300, activate: bool = True, **extra: str):
        """Run ``script`` with bash as the user, in HOME, the DB activated first (``activate``)."""
        prefix = "source balsamactivate testdb >/dev/null\n" if activate else ""
        return self.env.run(["bash", "-c", "set -e\ncd ~\n" + prefix + script], check=False, timeout=timeout,
                            **extra)


def transcript(proc) -> str:
    return f"--- rc {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="session")
def flows() -> Iterator[Flows]:
    from tests.support.balsam_env import BalsamEnv, IN_CI, ensure_test_user, make_repo_traversable

    for module in ("balsam", "django", "psycopg2"):
        require(module, importlib.util.find_spec(module) is not None, "pip install 'hpcnas[balsam]'")
    require("pg_ctl", shutil.which("pg_ctl", path=USER_PATH) is not None, "install postgresql")
    user = None
    if os.geteuid() == 0:
        if IN_CI:
            make_repo_traversable()
            make_repo_traversable(sys.executable)
        user = ensure_test_user().pw_name
    base = tempfile.mkdtemp(prefix="hpcnas-flows-")
    home = os.path.join(base, "home")
    os.makedirs(home)
    if user:
        import pwd

        info = pwd.getpwnam(user)
        for path in (base, home):
            os.chown(path, info.pw_uid, info.pw_gid)
        os.chmod(base, 0o755)
    env = BalsamEnv(base, user)
    env.base_env["PATH"] = USER_PATH
    env.db_path = os.path.join(home, "testdb")
    env.base_env.pop("BALSAM_DB_PATH")
    env.base_env["HPCNAS_TEST_SLEEP"] = "0.2"  # tests.support.balsam_problems: short evaluations
    try:
        init = env.run(["bash", "-c", (
            "set -e\ncd ~\n"
            "hpcnas balsam-setup --machine local\n"
            "hpcnas balsam-init testdb\n"
            "source balsamactivate testdb\n"
            "hpcnas balsam-apps\n"
            "balsam ls --wf NONE\n"
        )], check=False, timeout=300)
        env.base_env["BALSAM_DB_PATH"] = env.db_path  # what the activated shell has, for queries
        yield Flows(env, init, env.db_path)
    finally:
        env.close()
