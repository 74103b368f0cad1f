"""A virtual multi-node Slurm cluster on one machine, for tests (root only).

Each "node" is a network namespace (``ip netns add``) with its own UTS namespace (its own
hostname, ``vnode1`` ... ``vnodeN``), joined to the root namespace by a veth pair on a private
bridge with a private range (``10.213.K.0/24``; the root namespace is ``.1``, node ``i`` is
``.(10+i)``). The namespaces have no route beyond that range, so nothing leaves the bridge.
``each node bind-mounts ``/etc/netns/NS/hosts`` over ``/etc/hosts`` in its own mount namespace: every
node resolves every node's name and the root host's name (where slurmctld and the Balsam DB
run) to the bridge addresses.

One ``munged`` and one ``slurmctld`` run in the root namespace (``SlurmctldHost=<host>(10.213.K.1)``),
one ``slurmd -N vnodeI`` in each node (``NodeName``/``NodeAddr`` per node, the CPUs given by
the config: ``SlurmdParameters=config_overrides``). Jobs are submitted from the root namespace
with ``sbatch``; everything a job starts (``srun`` steps, MPI ranks, Ray) runs inside the
nodes' namespaces and sees their host names. ``srun`` is run inside a job (a node), never from
the root namespace (its I/O ports would be unreachable from the nodes).

:meth:`VirtualCluster.kill_node` SIGKILLs every process of one node's namespace (its slurmd and
its jobs): a node failure. :meth:`VirtualCluster.stop` cancels the jobs, kills every process
in the namespaces, stops the daemons and deletes namespaces, veths, the bridge and the
``/etc/netns`` files -- also when a test failed (the fixture calls it in ``finally``).

The session fixture :func:`virtual_cluster` skips on a developer machine without root and
fails with ``CI=true`` (:func:`tests.support.components.require`).
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field

import pytest

from tests.support.components import require
from tests.support.slurm_cluster import (
    SlurmCluster, _free_ports, _wait_for, _which, available as slurm_available, log_file, prepare_root,
    render_slurm_conf, start_munged,
)

NODES = 4
CPUS_PER_NODE = 4
NETWORK_PREFIX = "10.213"


def available() -> tuple[bool, str]:
    ok, why = slurm_available()
    if not ok:
        return ok, why
    missing = [n for n in ("ip", "unshare", "nsenter") if _which(n) is None]
    if missing:
        return False, f"missing {', '.join(missing)} (apt-get install iproute2 util-linux)"
    return True, ""


def _sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def free_subnet() -> ipaddress.IPv4Network:
    """A ``10.213.K.0/24`` that no interface of this machine uses (several sessions may run)."""
    used = _sh("ip", "-o", "-4", "addr").stdout
    taken = {int(m) for m in re.findall(rf"{NETWORK_PREFIX.replace('.', '[.]')}[.](\d+)[.]", used)}
    free = [k for k in range(1, 255) if k not in taken]
    if not free:
        raise RuntimeError(f"every {NETWORK_PREFIX}.K.0/24 is in use")
    return ipaddress.ip_network(f"{NETWORK_PREFIX}.{secrets.choice(free)}.0/24")


@dataclass
class VirtualNode:
    name: str  # host name and Slurm NodeName
    netns: str
    address: str
    veth: str  # host-side end of the veth pair

    @property
    def hosts_file(self) -> str:
        return f"/etc/netns/{self.netns}/hosts"

    def pids(self) -> list[int]:
        """Every process in this node's network namespace."""
        out = _sh("ip", "netns", "pids", self.netns, check=False).stdout
        return [int(p) for p in out.split()]


@dataclass
class VirtualCluster(SlurmCluster):
    """A running virtual cluster; ``nodes`` in order, ``subnet`` their range."""

    nodes: list[VirtualNode] = field(default_factory=list)
    subnet: ipaddress.IPv4Network | None = None
    bridge: str = ""
    bridge_address: str = ""
    token: str = ""

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def node(self, name: str) -> VirtualNode:
        return next(n for n in self.nodes if n.name == name)

    def node_states(self) -> dict[str, str]:
        out = self.run(["sinfo", "-h", "-N", "-o", "%N %T"], check=False).stdout
        return dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)

    def node_state(self) -> str:
        states = set(self.node_states().values())
        return states.pop() if len(states) == 1 else ",".join(sorted(states))

    def all_idle(self) -> bool:
        states = self.node_states()
        return len(states) == len(self.nodes) and all(s == "idle" for s in states.values())

    def kill_node(self, name: str, timeout: float = 15) -> list[int]:
        """SIGKILL every process of node ``name`` (its slurmd and all its jobs' processes)."""
        node = self.node(name)
        killed: list[int] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = node.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        proc = self.processes.get(f"slurmd-{name}")
        if proc is not None:
            proc.wait(timeout=10)
        return sorted(set(killed))

    def start_slurmd(self, name: str) -> None:
        """Start node ``name``'s slurmd in its namespaces (own hostname and /etc/hosts)."""
        node = self.node(name)
        os.makedirs(os.path.join(self.root, "spool", f"slurmd-{name}"), exist_ok=True)
        # a new Popen replaces (at the end of the dict) the dead one of a killed node
        self.processes.pop(f"slurmd-{name}", None)
        self.processes[f"slurmd-{name}"] = subprocess.Popen(
            [*node_command(node), "sh", "-c", 'mount --bind "$0" /etc/hosts && hostname "$1" && shift && exec "$@"',
             node.hosts_file, name, _which("slurmd"), "-D", "-N", name],
            env={**os.environ, "SLURM_CONF": self.conf}, stdout=log_file(self.root, f"slurmd-{name}"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def revive_node(self, name: str, timeout: float = 60) -> None:
        """After :meth:`kill_node`: start its slurmd again and wait until the node is idle."""
        self.start_slurmd(name)
        self.run(["scontrol", "update", f"NodeName={name}", "State=RESUME"], check=False)
        _wait_for(lambda: self.node_states().get(name) == "idle", timeout, f"{name} idle again", self)

    def log(self, name: str) -> str:
        if name.startswith("slurmd-"):
            path = os.path.join(self.root, "log", f"{name}.log")
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    return fh.read()
            except OSError:
                return ""
        return super().log(name)

    def stop(self) -> None:
        """Cancel jobs, kill every namespace process, stop the daemons, remove the network."""
        try:
            if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
                self.cancel_all(timeout=10)
        except Exception:  # noqa: BLE001 - keep tearing down
            pass
        for node in self.nodes:
            try:
                self.kill_node(node.name, timeout=5)
            except Exception:  # noqa: BLE001
                pass
        super().stop()
        for node in self.nodes:
            _sh("ip", "netns", "del", node.netns, check=False)
            _sh("ip", "link", "del", node.veth, check=False)
            shutil.rmtree(f"/etc/netns/{node.netns}", ignore_errors=True)
        if self.bridge:
            _sh("ip", "link", "del", self.bridge, check=False)


def node_command(node: VirtualNode) -> list[str]:
    """Prefix that runs a command in ``node``'s network namespace with its own UTS and mount
    namespaces (``ip netns exec`` would remount ``/sys`` without cgroups, which slurmd needs)."""
    return [_which("nsenter"), f"--net=/run/netns/{node.netns}", _which("unshare"), "--uts", "--mount",
            "--propagation", "private", "--"]


def _hosts_text(cluster: VirtualCluster) -> str:
    lines = ["127.0.0.1 localhost", f"{cluster.bridge_address} {cluster.hostname}"]
    lines += [f"{n.address} {n.name}" for n in cluster.nodes]
    return "\n".join(lines) + "\n"


def _setup_network(cluster: VirtualCluster, count: int) -> None:
    subnet = cluster.subnet
    hosts = list(subnet.hosts())
    cluster.bridge_address = str(hosts[0])
    _sh("ip", "link", "add", cluster.bridge, "type", "bridge")
    _sh("ip", "addr", "add", f"{cluster.bridge_address}/{subnet.prefixlen}", "dev", cluster.bridge)
    _sh("ip", "link", "set", cluster.bridge, "up")
    for i in range(1, count + 1):
        node = VirtualNode(name=f"vnode{i}", netns=f"hpcnas-{cluster.token}-vnode{i}",
                           address=str(hosts[9 + i]), veth=f"hv{cluster.token}h{i}")
        cluster.nodes.append(node)
        peer = f"hv{cluster.token}p{i}"
        _sh("ip", "netns", "add", node.netns)
        _sh("ip", "link", "add", node.veth, "type", "veth", "peer", "name", peer)
        _sh("ip", "link", "set", peer, "netns", node.netns)
        _sh("ip", "link", "set", node.veth, "master", cluster.bridge, "up")
        inside = ("ip", "netns", "exec", node.netns)
        _sh(*inside, "ip", "link", "set", "lo", "up")
        _sh(*inside, "ip", "link", "set", peer, "name", "eth0")
        _sh(*inside, "ip", "addr", "add", f"{node.address}/{subnet.prefixlen}", "dev", "eth0")
        _sh(*inside, "ip", "link", "set", "eth0", "up")
    text = _hosts_text(cluster)
    for node in cluster.nodes:
        folder = f"/etc/netns/{node.netns}"
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "hosts"), "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(os.path.join(folder, "hosts"), 0o644)


def start_virtual_cluster(count: int = NODES, cpus: int = CPUS_PER_NODE, timeout: float = 90) -> VirtualCluster:
    """Start the network, munged, slurmctld and one slurmd per node; return once all are idle."""
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    if count < 1:
        raise ValueError("a virtual cluster needs at least one node")
    root = prepare_root(None, prefix="hpcnas-vcluster-")
    hostname = socket.gethostname().split(".")[0]
    cluster = VirtualCluster(root=root, conf=os.path.join(root, "slurm.conf"), hostname=hostname,
                             subnet=free_subnet(), token=secrets.token_hex(2))
    cluster.bridge = f"hvb{cluster.token}"
    try:
        _setup_network(cluster, count)
        sock = start_munged(cluster)
        ctld_port, slurmd_port = _free_ports(2)
        node_lines = [f"NodeName={n.name} NodeAddr={n.address} NodeHostname={n.name} CPUs={cpus} "
                      f"RealMemory=2000 State=UNKNOWN" for n in cluster.nodes]
        text = render_slurm_conf(
            root=root, hostname=hostname, node="", ctld_port=ctld_port, slurmd_port=slurmd_port,
            munge_socket=sock, ctld_addr=cluster.bridge_address, node_lines=node_lines,
            partition_nodes=",".join(cluster.node_names),
            extra=["SlurmdParameters=config_overrides", "MpiParams=ports=20000-20999"],
        )
        # a dead node is noticed within seconds (the node-failure test), not minutes
        text = text.replace("SlurmdTimeout=60", "SlurmdTimeout=10")
        with open(cluster.conf, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(cluster.conf, 0o644)
        env = {**os.environ, "SLURM_CONF": cluster.conf}
        cluster.processes["slurmctld"] = subprocess.Popen(
            [_which("slurmctld"), "-D", "-i"], env=env,
            stdout=log_file(root, "slurmctld"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        for node in cluster.nodes:
            cluster.start_slurmd(node.name)
        _wait_for(cluster.all_idle, timeout, f"{count} idle nodes", cluster)
    except BaseException:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster


@pytest.fixture(scope="session")
def virtual_cluster():
    """Session-wide virtual cluster of :data:`NODES` nodes (skips without root, fails in CI)."""
    ok, why = available()
    require("virtual Slurm cluster", ok, why)
    cluster = start_virtual_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
