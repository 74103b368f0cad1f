"""A private one-node Slurm cluster for tests (Debian ``slurm-wlm`` + ``munge``).

:func:`start_slurm_cluster` starts, as root, ``munged`` (as the ``munge`` user, with its own
key and socket), ``slurmctld`` and ``slurmd`` in the foreground with ``SLURM_CONF`` pointing at a
config written into a fresh folder: ``SlurmUser=root``, ``select/cons_tres`` + ``CR_Core``,
``proctrack/linuxproc``, ``task/none``, ``ReturnToService=2``, accounting off, free TCP ports
(so several clusters can run side by side), one node described by ``slurmd -C`` (real CPUs
and memory) in one default partition. Any user may submit (``cluster.run([...], user=...)``
runs ``sbatch``/``squeue``/``scontrol`` through ``runuser`` with the cluster's ``SLURM_CONF``).
:meth:`SlurmCluster.stop` cancels every job and stops the daemons by PID.

The session-scoped pytest fixture :func:`slurm_cluster` skips on a developer machine without
root or the packages, and fails in CI (``tests.support.components.require``). Import it into
a test module (``from tests.support.slurm_cluster import slurm_cluster``) or a conftest.
"""
from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pytest

from tests.support.components import require

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")
PARTITION = "debug"


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


def available() -> tuple[bool, str]:
    """Whether this process can start a cluster, and why not."""
    missing = [n for n in DAEMONS + CLIENTS if _which(n) is None]
    if missing:
        return False, f"missing {', '.join(missing)} (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return False, "starting slurmctld/slurmd needs root"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return False, "no 'munge' user (apt-get install munge)"
    return True, ""


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def node_line(hostname: str) -> str:
    """``NodeName=... CPUs=... RealMemory=...`` from ``slurmd -C`` (memory kept 5 % below)."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30).stdout
    line = next((l for l in out.splitlines() if l.startswith("NodeName=")), "")
    if not line:
        return f"NodeName={hostname} CPUs={os.cpu_count() or 1} State=UNKNOWN"
    fields = dict(f.split("=", 1) for f in line.split())
    fields["NodeName"] = hostname
    if "RealMemory" in fields:
        fields["RealMemory"] = str(int(int(fields["RealMemory"]) * 0.95))
    return " ".join(f"{k}={v}" for k, v in fields.items()) + " State=UNKNOWN"


def render_slurm_conf(
    *, root: str, hostname: str, node: str, ctld_port: int, slurmd_port: int, munge_socket: str,
    ctld_addr: str = "127.0.0.1", node_lines: Sequence[str] | None = None, partition_nodes: str | None = None,
    extra: Sequence[str] = (),
) -> str:
    """slurm.conf text for a cluster whose state lives under ``root``.

    One node (``node``, at 127.0.0.1) by default; ``node_lines`` (complete ``NodeName=...``
    lines) and ``partition_nodes`` describe several (:mod:`tests.support.virtual_cluster`),
    ``ctld_addr`` is where slurmctld is reached, ``extra`` more settings.
    """
    name = "hpcnas" + secrets.token_hex(3)
    nodes = list(node_lines) if node_lines is not None else [f"{node} NodeAddr=127.0.0.1 NodeHostname={hostname}"]
    return "\n".join(
        [
            f"ClusterName={name}",
            f"SlurmctldHost={hostname}({ctld_addr})",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={munge_socket}",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "ReturnToService=2",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MinJobAge=600",
            "KillWait=5",
            "InactiveLimit=0",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=60",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool/slurmd-%n",
            f"SlurmctldPidFile={root}/run/slurmctld.pid",
            f"SlurmdPidFile={root}/run/slurmd-%n.pid",
            f"SlurmctldLogFile={root}/log/slurmctld.log",
            f"SlurmdLogFile={root}/log/slurmd-%n.log",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            *extra,
            *nodes,
            f"PartitionName={PARTITION} Nodes={partition_nodes or hostname} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


@dataclass
class SlurmCluster:
    """A running one-node cluster; ``conf`` is the ``SLURM_CONF`` every client needs."""

    root: str
    conf: str
    hostname: str
    partition: str = PARTITION
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": self.conf}

    def run(
        self,
        args: Sequence[str],
        *,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float = 60,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run a Slurm client (``["sbatch", ...]``), as ``user`` through ``runuser`` if given."""
        full_env = {**os.environ, **(env or {}), **self.env}
        cmd = list(args)
        if user:
            names = sorted({"SLURM_CONF", *(env or {})})
            cmd = ["runuser", "-u", user, "--", "env", *[f"{k}={full_env[k]}" for k in names], *cmd]
        proc = subprocess.run(cmd, env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def job_state(self, job_id: int | str) -> str:
        out = self.run(["scontrol", "show", "job", str(job_id)], check=False).stdout
        match = re.search(r"JobState=(\S+)", out)
        return match.group(1) if match else "UNKNOWN"

    def wait_job(self, job_id: int | str, timeout: float = 120, poll: float = 1.0) -> str:
        """Wait until the job leaves PENDING/RUNNING/COMPLETING; return its final state."""
        deadline = time.monotonic() + timeout
        state = "UNKNOWN"
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "UNKNOWN"):
                return state
            time.sleep(poll)
        return state

    def node_state(self) -> str:
        out = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout.strip()
        return out.splitlines()[0] if out else ""

    def log(self, name: str) -> str:
        path = os.path.join(self.root, "log", f"{name}.log")
        if name == "slurmd":
            path = os.path.join(self.root, "log", f"slurmd-{self.hostname}.log")
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def cancel_all(self, timeout: float = 30) -> None:
        self.run(["scancel", "--full", "--partition", self.partition], check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.run(["squeue", "-h", "-o", "%i"], check=False).stdout.strip()
            if not out:
                return
            time.sleep(0.5)

    def job_processes(self) -> tuple[set[int], set[int]]:
        """PIDs of this cluster's job processes and the sessions they run in.

        ``slurmstepd`` detaches from ``slurmd``; this cluster's are the ones whose environment
        holds its ``SLURM_CONF``. Job processes are their descendants (and whatever shares their
        sessions, which catches helpers orphaned when a job is cancelled).
        """
        table = _process_table()
        marker = f"SLURM_CONF={self.conf}".encode()
        roots = set()
        for pid in table:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if not fh.read().startswith(b"slurmstepd"):
                        continue
                with open(f"/proc/{pid}/environ", "rb") as fh:
                    if marker in fh.read().split(b"\0"):
                        roots.add(pid)
            except OSError:
                continue
        children: dict[int, list[int]] = {}
        for pid, (ppid, _sid) in table.items():
            children.setdefault(ppid, []).append(pid)
        found, todo = set(roots), list(roots)
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        daemons = {p.pid for p in self.processes.values()}
        sessions = {table[p][1] for p in found if p in table} - {os.getsid(0)} - daemons
        return found, sessions

    def kill_leftovers(self, pids: set[int], sessions: set[int]) -> list[int]:
        """SIGKILL what is left of job processes (e.g. helpers orphaned when a job was cancelled)."""
        killed = []
        daemons = {p.pid for p in self.processes.values()}
        for pid, (_ppid, sid) in _process_table().items():
            if pid not in daemons and (pid in pids or sid in sessions):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
        return killed

    def stop(self) -> None:
        """Cancel every job, kill what the jobs left behind, stop slurmd, slurmctld and munged by PID."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            pids, sessions = self.job_processes()
            self.cancel_all()
            time.sleep(1)
            more_pids, more_sessions = self.job_processes()
            self.kill_leftovers(pids | more_pids, sessions | more_sessions)
        for name in reversed(list(self.processes)):  # slurmd(s), slurmctld, munged
            proc = self.processes.pop(name)
            if proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _process_table() -> dict[int, tuple[int, int]]:
    """``{pid: (ppid, session id)}`` of every process, from ``/proc``."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            table[int(name)] = (int(fields[1]), int(fields[3]))
        except (OSError, ValueError, IndexError):
            continue
    return table


def prepare_root(root: str | None, prefix: str = "hpcnas-slurm-") -> str:
    """A world-readable state folder with the sub-folders every cluster uses."""
    root = root or tempfile.mkdtemp(prefix=prefix)
    os.chmod(root, 0o755)
    for sub in ("state", "spool", "run", "log", "munge"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    return root


def start_munged(cluster: SlurmCluster) -> str:
    """Start ``munged`` (as ``munge``, with a fresh key) for ``cluster``; returns its socket path."""
    root = cluster.root
    munge = pwd.getpwnam("munge")
    munge_dir = os.path.join(root, "munge")
    os.chmod(munge_dir, 0o755)
    key = os.path.join(munge_dir, "munge.key")
    with open(key, "wb") as fh:
        fh.write(secrets.token_bytes(1024))
    os.chmod(key, 0o400)
    for path in (munge_dir, key):
        os.chown(path, munge.pw_uid, munge.pw_gid)
    sock = os.path.join(munge_dir, "munge.socket")
    cluster.processes["munged"] = subprocess.Popen(
        ["runuser", "-u", "munge", "--", _which("munged"), "-F", f"--socket={sock}",
         f"--key-file={key}", f"--pid-file={munge_dir}/munged.pid",
         f"--log-file={munge_dir}/munged.log", f"--seed-file={munge_dir}/munged.seed"],
        stdout=log_file(root, "munged"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    _wait_for(lambda: os.path.exists(sock), 15, "munged socket", cluster)
    return sock


def log_file(root: str, name: str):
    return open(os.path.join(root, "log", f"{name}.out"), "wb")


def start_slurm_cluster(root: str | None = None, timeout: float = 60) -> SlurmCluster:
    """Start munged + slurmctld + slurmd as root; return once the node is idle."""
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    root = prepare_root(root)
    hostname = socket.gethostname().split(".")[0]
    ctld_port, slurmd_port = _free_ports(2)
    conf = os.path.join(root, "slurm.conf")
    cluster = SlurmCluster(root=root, conf=conf, hostname=hostname)
    env = {**os.environ, "SLURM_CONF": conf}
    try:
        sock = start_munged(cluster)
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write(render_slurm_conf(root=root, hostname=hostname, node=node_line(hostname),
                                       ctld_port=ctld_port, slurmd_port=slurmd_port, munge_socket=sock))
        os.chmod(conf, 0o644)
        cluster.processes["slurmctld"] = subprocess.Popen(
            [_which("slurmctld"), "-D", "-i"], env=env,
            stdout=log_file(root, "slurmctld"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        cluster.processes["slurmd"] = subprocess.Popen(
            [_which("slurmd"), "-D", "-N", hostname], env=env,
            stdout=log_file(root, "slurmd"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        _wait_for(lambda: cluster.node_state().startswith("idle"), timeout, "an idle node", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for(predicate, timeout: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in cluster.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}) while waiting for {what}: "
                                   f"{cluster.log(name)[-2000:]}")
        if predicate():
            return
        time.sleep(0.3)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}; slurmctld log: "
                       f"{cluster.log('slurmctld')[-2000:]}")


@pytest.fixture(scope="session")
def slurm_cluster():
    """Session-wide one-node Slurm cluster (skips locally without root, fails in CI).

    Its folder is world-readable (not under pytest's private tmp) so that the ordinary users
    who submit jobs can read ``slurm.conf``; it is removed at teardown.
    """
    ok, why = available()
    require("Slurm one-node cluster", ok, why)
    cluster = start_slurm_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
