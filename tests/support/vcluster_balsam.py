"""Balsam on the virtual cluster: a site HOME, launcher job scripts, placement of evaluations.

The DB of these tests is its own (``make_balsam_env(allow=[the cluster's range])``): the
hardened DB then listens on every address and lets the nodes' range in with its password, as
``hpcnas balsam-init --allow CIDR`` does for real compute nodes. Inside the nodes the DB host's
name resolves to the bridge address (:mod:`tests.support.virtual_cluster`).
"""
from __future__ import annotations

import json
import os
import pwd
import sys
import time
from typing import Any

from hpcnas.balsam.render import LaunchRequest, render_job_script


def site_home(env, cluster, name: str, **settings: Any) -> str:
    """A HOME with ``balsam-setup --machine slurm`` done and ``settings`` added to settings.json."""
    home = os.path.join(env.base, name)
    os.makedirs(home, exist_ok=True)
    if env.user:
        info = pwd.getpwnam(env.user)
        os.chown(home, info.pw_uid, info.pw_gid)
    env.hpcnas("balsam-setup", "--machine", "slurm", HOME=home, SLURM_CONF=cluster.conf)
    if settings:
        path = os.path.join(home, ".balsam", "settings.json")
        code = (f"import json; p={path!r}; v=json.load(open(p)); v.update({json.dumps(settings)}); "
                "json.dump(v, open(p, 'w'))")
        env.run([sys.executable, "-c", code], HOME=home)
    return home


def submit_launcher(env, cluster, home: str, workflow: str, nodes: int, job_mode: str,
                    time_minutes: int = 8) -> str:
    """``sbatch`` the shipped Slurm job script (a Balsam launcher over ``nodes`` nodes) as the
    DB owner; returns the Slurm job id."""
    pg_bin = [p for p in env.base_env["PATH"].split(os.pathsep) if os.path.isfile(os.path.join(p, "pg_ctl"))]
    script = render_job_script(
        "slurm.tmpl",
        LaunchRequest(nodes=nodes, time_minutes=time_minutes, queue=cluster.partition, job_mode=job_mode,
                      wf_filter=workflow),
        balsam_bin=os.path.dirname(sys.executable), balsam_db_path=env.db_path,
        pg_bin=pg_bin[0] if pg_bin else "/usr/bin",
    )
    path = os.path.join(home, f"launch-{workflow}.sh")
    env.run([sys.executable, "-c", f"open({path!r}, 'w').write({script!r})"], HOME=home)
    proc = env.run(["sbatch", "--parsable", "-o", os.path.join(home, f"launch-{workflow}-%j.out"), path],
                   HOME=home, SLURM_CONF=cluster.conf, cwd=home)
    return proc.stdout.strip().split(";")[0]


def wait_until(predicate, timeout: float, what: str, poll: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def eval_reports(env, workflow: str) -> list[dict]:
    """``(name, state, report)`` of every evaluation job of ``workflow`` (report: the run's)."""
    rows = env.query(
        f"list(BalsamJob.objects.filter(workflow={workflow!r}).exclude(name='search')"
        ".values('job_id', 'name', 'state', 'num_nodes', 'data', 'state_history'))"
    )
    for row in rows:
        row["report"] = (row.pop("data") or {}).get("hpcnas_result") or {}
    return rows


def intervals_overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def tail(path: str, chars: int = 3000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-chars:]
    except OSError:
        return f"(no {path})"


def launcher_logs(env, workflow: str | None = None, chars: int = 10**7) -> str:
    """The launcher logs in the DB's ``log`` folder (the last ``chars`` of each)."""
    folder = os.path.join(env.db_path, "log")
    out = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        text = tail(os.path.join(folder, name), chars)
        if workflow is None or workflow in text:
            out.append(text)
    return "\n".join(out)


def to_json(value: Any) -> str:
    return json.dumps(value, default=str)
