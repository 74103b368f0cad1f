"""Can the nodes of an allocation reach the Balsam DB? ``balsam-submit`` asks before it submits.

A DB hardened by hpcnas (:func:`hpcnas.balsam.db.harden_db`) accepts TCP connections from
this host (``samehost``) and the ``--allow`` networks only. A launcher on compute nodes outside
those would start, fail to connect and hold the allocation for nothing. On Slurm the nodes of
the partition and their addresses are known (``sinfo ... %N %o``): :func:`check_slurm_partition`
refuses the submission with one line that says how to open the DB. Elsewhere (Cobalt, PBS) the
nodes are not known before the job starts: :func:`loopback_only_warning` warns (one line, the
submission goes on) when the DB accepts no network besides this host's.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
from typing import Iterable, Mapping

from hpcnas.balsam.db import HBA_MARK, pg_data_dir
from hpcnas.core.errors import HpcnasError


def allowed_networks(db_path: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """The ``--allow`` networks of an hpcnas-hardened DB; None when its ``pg_hba.conf`` is not
    hpcnas's or cannot be read (nothing to check then)."""
    try:
        with open(os.path.join(pg_data_dir(db_path), "pg_hba.conf"), encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    if not text.startswith(HBA_MARK):
        return None
    nets = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "host" and "/" in fields[3]:
            nets.append(ipaddress.ip_network(fields[3], strict=False))
    return nets


def local_addresses() -> set[str]:
    """Every address of this host (what ``samehost`` accepts)."""
    found = {"127.0.0.1", "::1"}
    try:
        import psutil

        for addrs in psutil.net_if_addrs().values():
            found.update(a.address.split("%")[0] for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6))
    except ImportError:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    return found


def unreachable(db_path: str, nodes: Mapping[str, str]) -> dict[str, str]:
    """The ``{node: address}`` of ``nodes`` that the DB would refuse (empty: all may connect)."""
    nets = allowed_networks(db_path)
    if nets is None:
        return {}
    local = local_addresses()
    out = {}
    for name, addr in nodes.items():
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            try:
                ip = ipaddress.ip_address(socket.gethostbyname(addr))
            except (OSError, ValueError):
                continue  # an address we cannot resolve here: do not guess
        if str(ip) not in local and not ip.is_loopback and not any(ip in net for net in nets):
            out[name] = str(ip)
    return out


def slurm_partition_nodes(partition: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{node: NodeAddr}`` of a Slurm partition (empty when sinfo cannot tell)."""
    sinfo = shutil.which("sinfo", path=(env or os.environ).get("PATH"))
    if not sinfo:
        return {}
    proc = subprocess.run([sinfo, "-h", "-N", "-p", partition, "-o", "%N %o"], capture_output=True, text=True,
                          env=dict(env or os.environ), timeout=60)
    if proc.returncode != 0:
        return {}
    return dict(line.split()[:2] for line in proc.stdout.splitlines() if len(line.split()) >= 2)


def suggested_networks(addresses: Iterable[str]) -> list[str]:
    """The /24 (IPv4) or /64 (IPv6) networks holding ``addresses``, for ``--allow``."""
    nets = {ipaddress.ip_network(f"{a}/{24 if ':' not in a else 64}", strict=False) for a in addresses}
    return [str(n) for n in sorted(nets, key=str)]


def check_slurm_partition(db_path: str, partition: str, env: Mapping[str, str] | None = None) -> None:
    """Raise a one-line :class:`HpcnasError` when nodes of ``partition`` cannot reach the DB."""
    bad = unreachable(db_path, slurm_partition_nodes(partition, env))
    if not bad:
        return
    shown = ", ".join(f"{n} ({a})" for n, a in list(bad.items())[:4]) + (" ..." if len(bad) > 4 else "")
    allow = " ".join(f"--allow {n}" for n in suggested_networks(bad.values()))
    raise HpcnasError(
        f"the Balsam DB at {db_path} accepts TCP connections only from this host and its --allow networks; "
        f"nodes of partition '{partition}' cannot reach it: {shown}. Open it with: hpcnas balsam-harden "
        f"{db_path} {allow} (it stops the DB; start it again with source balsamactivate {db_path})"
    )


def loopback_only_warning(db_path: str) -> str | None:
    """A one-line warning when an hpcnas-hardened DB accepts no ``--allow`` network at all (only
    this host): compute nodes, where a batch job's launcher runs, could not reach it."""
    nets = allowed_networks(db_path)
    if nets is None or nets:
        return None
    return (f"hpcnas: warning: the Balsam DB at {db_path} accepts TCP connections from this host only: a "
            "launcher on the allocation's compute nodes cannot reach it unless they are this host; open it "
            f"with hpcnas balsam-harden {db_path} --allow CIDR (the compute nodes' network)")

