"""A real Balsam 0.x DB (Postgres) for tests, owned by an ordinary user.

Postgres refuses to run as root. When the tests run as root (CI), :func:`make_balsam_env`
creates the ordinary user ``hpcnastest`` (``useradd``), gives it a private temporary HOME and
runs every Balsam / Postgres / search command as that user through ``runuser``; as a normal
user it runs them directly. Every process started here carries ``HPCNAS_TEST_SESSION=<id>`` in
its environment, so :meth:`BalsamEnv.close` can stop launchers and the DB server and then kill
any leftover process of this session by PID (no orphans), without touching other sessions.

Used by ``tests/e2e/conftest.py`` (fixtures ``balsam_env`` and ``balsam_workflow``) and by
other suites that need a DB (analytics, Slurm).
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_USER = os.environ.get("HPCNAS_TEST_USER", "hpcnastest")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class BalsamEnvError(RuntimeError):
    """The environment cannot host a Balsam DB (reason in the message)."""


def _is_root() -> bool:
    return os.geteuid() == 0


def ensure_test_user(name: str = TEST_USER) -> pwd.struct_passwd:
    """The ordinary user that owns Balsam/Postgres in root runs (created when missing)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    proc = subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/bash", name],
                          capture_output=True, text=True)
    if proc.returncode not in (0, 9):  # 9: exists (raced with another session)
        raise BalsamEnvError(f"useradd {name} failed: {proc.stderr.strip()}")
    return pwd.getpwnam(name)


def make_repo_traversable(path: str = ROOT) -> None:
    """chmod o+x on every parent of ``path`` (CI clones where we do not choose)."""
    current = os.path.abspath(path)
    while True:
        mode = os.stat(current).st_mode
        if not mode & 0o001:
            os.chmod(current, mode | 0o001)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent


class BalsamEnv:
    """A Balsam DB owned by ``user`` (None: the current user), and commands run as that user."""

    def __init__(self, base: str, user: str | None, allow: Sequence[str] = ()) -> None:
        self.base = base
        self.allow = list(allow)  # networks (CIDR) whose hosts may connect (hpcnas balsam-init --allow)
        self.user = user
        self.home = os.path.join(base, "home")
        self.db_path = os.path.join(base, "db")
        self.session = uuid.uuid4().hex[:12]
        self._procs: list[subprocess.Popen] = []
        bindir = os.path.dirname(sys.executable)
        self.base_env = {
            "HOME": self.home,
            "USER": user or pwd.getpwuid(os.getuid()).pw_name,
            "LOGNAME": user or pwd.getpwuid(os.getuid()).pw_name,
            "PATH": bindir + os.pathsep + os.environ.get("PATH", os.defpath),
            "PYTHONPATH": ROOT,
            "LANG": "C.UTF-8",
            "HPCNAS_TEST_SESSION": self.session,
            "BALSAM_DB_PATH": self.db_path,
            "PYTHONUNBUFFERED": "1",
        }

    # ----------------------------------------------------------------- commands
    def env(self, **extra: str) -> dict[str, str]:
        env = dict(self.base_env)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def command(self, argv: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
        """``argv`` wrapped to run as the DB owner with exactly ``env`` (default :meth:`env`)."""
        env = self.env() if env is None else env
        pairs = [f"{k}={v}" for k, v in env.items()]
        if self.user:
            return ["runuser", "-u", self.user, "--", "env", "-i", *pairs, *argv]
        return ["env", "-i", *pairs, *argv]

    def run(self, argv: Sequence[str], check: bool = True, timeout: float = 300, cwd: str | None = None,
            **extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(argv, self.env(**extra)), capture_output=True, text=True,
                              timeout=timeout, cwd=cwd or self.home)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"command failed ({proc.returncode}): {' '.join(argv)}\n--- stdout\n{proc.stdout[-3000:]}\n"
                f"--- stderr\n{proc.stderr[-3000:]}"
            )
        return proc

    def popen(self, argv: Sequence[str], log_path: str, cwd: str | None = None, **extra: str) -> subprocess.Popen:
        """Start ``argv`` in its own session (process group) with output to ``log_path``."""
        log = open(log_path, "ab")
        proc = subprocess.Popen(self.command(argv, self.env(**extra)), stdout=log, stderr=subprocess.STDOUT,
                                cwd=cwd or self.home, start_new_session=True)
        log.close()
        self._procs.append(proc)
        return proc

    def python(self, code: str, timeout: float = 120, **extra: str) -> str:
        """Run Python ``code`` as the owner (DB active) and return its stdout."""
        return self.run([sys.executable, "-c", code], timeout=timeout, **extra).stdout

    def query(self, code: str) -> Any:
        """Evaluate ``code`` (an expression over ``BalsamJob``) as the owner; returns its JSON value."""
        script = (
            "import json\nfrom hpcnas.balsam.connect import connect\ndb = connect()\n"
            "BalsamJob = db.BalsamJob\n"
            f"print('JSON:' + json.dumps({code}, default=str))\n"
        )
        out = self.python(script)
        line = [l for l in out.splitlines() if l.startswith("JSON:")][-1]
        return json.loads(line[5:])

    def hpcnas(self, *args: str, check: bool = True, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
        return self.run([sys.executable, "-m", "hpcnas.cli.main", *args], check=check, timeout=timeout, **extra)

    def balsam(self, *args: str, check: bool = True, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
        return self.run([os.path.join(os.path.dirname(sys.executable), "balsam"), *args],
                        check=check, timeout=timeout, **extra)

    # ----------------------------------------------------------------- launcher
    def start_launcher(self, workflow: str, job_mode: str = "serial", log_name: str | None = None,
                       time_limit_minutes: float = 30, stock: bool = False, **extra: str) -> subprocess.Popen:
        """Start a launcher for ``workflow`` in its own process group.

        ``stock=True`` runs Balsam's own ``balsam launcher`` (the documented user flow); the
        default runs ``python -m hpcnas.balsam.launch`` (same launcher, serial ensemble on a free
        port instead of the fixed 19876, so concurrent test sessions on one host do not collide).
        ``extra`` are environment variables of the launcher.
        """
        log = os.path.join(self.base, log_name or f"launcher-{workflow}-{job_mode}.log")
        entry = ([os.path.join(os.path.dirname(sys.executable), "balsam"), "launcher"] if stock
                 else [sys.executable, "-m", "hpcnas.balsam.launch"])
        return self.popen(
            [*entry, "--wf-filter", workflow, "--job-mode", job_mode, "--time-limit-minutes", str(time_limit_minutes)],
            log, **extra,
        )

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Signal ``proc``'s process group, wait, then SIGKILL the group if it lingers."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        # MPI launchers (hydra) put the ensemble in other process groups: like the end of an
        # allocation, nothing the launcher started may survive it (the DB server stays)
        server = self._server_pids()
        deadline = time.time() + (0 if sig == signal.SIGKILL else 15)
        while time.time() < deadline and [p for p in self.session_pids() if p not in server]:
            time.sleep(0.3)  # a graceful stop: the ensemble marks its running jobs and exits
        self.kill_leftovers()

    def session_pids(self) -> list[int]:
        """PIDs of every live process started by this session.

        A process belongs to the session when its environment has the session marker or its
        working directory lies under :attr:`base`. (Balsam calls ``setproctitle``, which wipes
        ``/proc/PID/environ``; its launcher processes all work under the DB or HOME folders.)
        """
        marker = f"HPCNAS_TEST_SESSION={self.session}".encode()
        base = os.path.realpath(self.base) + os.sep
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                cwd = os.readlink(f"/proc/{name}/cwd").removesuffix(" (deleted)")
                if (cwd + os.sep).startswith(base):
                    pids.append(int(name))
                    continue
                with open(f"/proc/{name}/environ", "rb") as fh:
                    if marker in fh.read().split(b"\0"):
                        pids.append(int(name))
            except OSError:
                continue
        return pids

    def kill_leftovers(self) -> list[int]:
        """SIGKILL leftover processes of this session except the DB server; returns their PIDs."""
        server = self._server_pids()
        pids = [p for p in self.session_pids() if p not in server]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def _server_pids(self) -> set[int]:
        pidfile = os.path.join(self.db_path, "balsamdb", "postmaster.pid")
        try:
            with open(pidfile) as fh:
                main = int(fh.readline().strip())
        except (OSError, ValueError):
            return set()
        out = {main}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat") as fh:
                        if int(fh.read().rsplit(")", 1)[1].split()[1]) == main:
                            out.add(int(name))
                except (OSError, ValueError, IndexError):
                    continue
        return out

    # ----------------------------------------------------------------- lifecycle
    def setup(self) -> None:
        self._check_user()
        # Postgres binaries usable by the owner (its socket folder must be writable by it)
        out = self.python("from hpcnas.balsam.db import postgres_env; print('PATH=' + postgres_env()['PATH'])")
        self.base_env["PATH"] = [l for l in out.splitlines() if l.startswith("PATH=")][-1][5:]
        code = (
            "from hpcnas.balsam.db import init_db, start_db\n"
            "from hpcnas.balsam.settings import install_site, LOCAL_SITE\n"
            f"install_site(LOCAL_SITE)\ninit_db({self.db_path!r}, allow={self.allow!r})\nstart_db({self.db_path!r})\n"
        )
        self.run([sys.executable, "-c", code], timeout=180, BALSAM_DB_PATH="")
        self.hpcnas("balsam-apps")

    def _check_user(self) -> None:
        proc = self.run([sys.executable, "-c", "import hpcnas, tests.support, balsam, django"], check=False)
        if proc.returncode != 0:
            raise BalsamEnvError(
                f"user {self.user or 'current'} cannot run {sys.executable} or import hpcnas from {ROOT}: "
                f"{proc.stderr.strip()[-300:]} (make the repository and the venv readable and traversable, "
                "e.g. chmod o+rx on their parent folders)"
            )

    def close(self) -> None:
        for proc in self._procs:
            try:
                self.stop(proc, timeout=20)
            except Exception:  # noqa: BLE001 - keep tearing down
                pass
        self.kill_leftovers()
        if os.path.isdir(os.path.join(self.db_path, "balsamdb")):
            self.run([sys.executable, "-c", f"from hpcnas.balsam.db import stop_db; stop_db({self.db_path!r})"],
                     check=False, timeout=120)
        deadline = time.time() + 20
        while time.time() < deadline and self.session_pids():
            time.sleep(0.2)
        for pid in self.session_pids():  # a server that would not stop
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)


def make_balsam_env(allow: Sequence[str] = ()) -> BalsamEnv:
    """Create the owner (root runs), a private base folder, the DB, the local site and the apps.

    ``allow``: networks whose hosts may connect to the DB besides this host (a virtual
    cluster's range, :mod:`tests.support.virtual_cluster`)."""
    user = None
    if _is_root():
        if IN_CI:
            make_repo_traversable(ROOT)
            make_repo_traversable(sys.executable)
        user = ensure_test_user().pw_name
    base = tempfile.mkdtemp(prefix="hpcnas-balsam-")
    os.makedirs(os.path.join(base, "home"))
    if user:
        info = pwd.getpwnam(user)
        for path in (base, os.path.join(base, "home")):
            os.chown(path, info.pw_uid, info.pw_gid)
        os.chmod(base, 0o755)
    env = BalsamEnv(base, user, allow)
    try:
        env.setup()
    except BaseException:
        env.close()
        raise
    return env


# --------------------------------------------------------------------- e2e helpers
def wait_for_state(env, name_filter: str, states: tuple[str, ...], launcher, timeout: float) -> str:
    deadline = time.time() + timeout
    state = None
    while time.time() < deadline:
        state = env.query(f"list(BalsamJob.objects.filter({name_filter}).values_list('state', flat=True))")
        if state and state[0] in states:
            return state[0]
        if launcher.poll() is not None:
            break
        time.sleep(2)
    raise AssertionError(f"search job never reached {states} (last state {state}, launcher rc {launcher.poll()})")


def wait_for_evaluations_final(env, workflow: str, launcher, timeout: float) -> None:
    """Wait until every evaluation job of ``workflow`` is in a final state. The search master
    reads ``RUN_DONE`` as done, so a search can end while a transition process has still to move
    its last evaluations on to ``JOB_FINISHED`` (every few seconds under Balsam's own pace)."""
    final = ("JOB_FINISHED", "FAILED", "USER_KILLED")
    deadline = time.time() + timeout
    states: list[str] = []
    while time.time() < deadline:
        states = env.query(f"list(BalsamJob.objects.filter(workflow={workflow!r}, name__startswith='eval-')"
                           ".values_list('state', flat=True))")
        if all(s in final for s in states) or launcher.poll() is not None:
            return
        time.sleep(0.5)
    raise AssertionError(f"evaluations still not final after {timeout:.0f} s: {sorted(set(states))}")


def search_args(max_evals: int, run: str, extra: str = "") -> str:
    return (
        "--evaluator balsam --problem tests.support.balsam_problems.Problem "
        f"--run tests.support.balsam_problems.{run} --max-evals {max_evals} --num-evals-per-node 2 "
        f"--seed 3 {extra}"  # no terminal: the search job's .out file gets a line per evaluation
    ).strip()


def eval_rows(env, workflow: str) -> list[dict]:
    return env.query(
        f"list(BalsamJob.objects.filter(workflow={workflow!r}, name__startswith='eval-')"
        ".values('name', 'state', 'state_history', 'node_packing_count', 'data'))"
    )


def run_master_with_launcher(env, workflow: str, argv: Sequence[str], master_log: str, job_mode: str,
                             limit: float, **extra: str) -> subprocess.Popen:
    """Run a search master (``argv``) outside a one-node launcher and wait for it to end.

    The workstation launcher leaves after a few idle loops, so it starts only once the master has
    queued evaluations in ``workflow``; both are stopped on the way out. Returns the ended master.
    """
    master = env.popen(list(argv), master_log, **extra)
    launcher = None
    try:
        deadline = time.time() + 300
        while not env.query(f"BalsamJob.objects.filter(workflow={workflow!r}).count()") and master.poll() is None:
            assert time.time() < deadline, "the search submitted no evaluation in 300 s"
            time.sleep(1)
        launcher = env.start_launcher(workflow, job_mode)
        master.wait(timeout=limit)
    finally:
        if launcher is not None:
            env.stop(launcher)
        env.stop(master)
    return master
