"""Pure render functions for ``hpcnas ray-submit``: job scripts and submit commands as text.

A :class:`RayJobSpec` holds plain values; :func:`render_script` turns it into the batch script
of one scheduler from the jinja templates in ``jobscripts/ray/<scheduler>.sh.j2`` (all three
include ``_cluster.sh.j2``, the part that starts the Ray head on the first node, one Ray
worker per other node with the scheduler's launcher, waits for every node, runs the search
with ``--evaluator ray --ray-address HEAD:PORT`` and stops the cluster).
:func:`submit_command` and :func:`parse_job_id` translate to and from ``sbatch``/``qsub``.
Nothing here runs a process, so every script is testable as text (and with ``bash -n``).
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import Sequence

from hpcnas.core.errors import HpcnasError, UsageError

#: scheduler -> (template, submit program)
SCHEDULERS = {
    "slurm": ("slurm.sh.j2", "sbatch"),
    "pbs": ("pbs.sh.j2", "qsub"),
    "cobalt": ("cobalt.sh.j2", "qsub"),
}


@dataclass
class RayJobSpec:
    """Everything a Ray job script needs; ``search_args`` is ``[family, search, options...]``."""

    name: str
    nodes: int
    time_minutes: int
    queue: str
    scheduler: str
    exp_dir: str
    search_args: Sequence[str]
    project: str = ""
    activate_script: str | None = None
    cpus_per_node: int | None = None
    gpus_per_node: int | None = None
    ray_port: int = 6379
    start_timeout: int = 300
    python: str = field(default_factory=lambda: sys.executable)
    #: folders put first on PYTHONPATH in the job (default: the submitting directory, so that
    #: problems and run functions importable at submission stay importable after ``cd exp_dir``)
    pythonpath: Sequence[str] = field(default_factory=lambda: [os.getcwd()])
    scheduler_flags: Sequence[str] = ()

    def check(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise UsageError(f"--scheduler '{self.scheduler}' is unknown: choose one of {', '.join(SCHEDULERS)}")
        for flag, value in (("-n/--nodes", self.nodes), ("-t/--time-minutes", self.time_minutes)):
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{flag} must be a positive integer, got {value!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name or ""):
            raise UsageError(f"-w/--workflow '{self.name}' must be letters, digits, '.', '_' or '-'")
        if not self.queue:
            raise UsageError("-q/--queue is empty: name the queue (Cobalt/PBS) or partition (Slurm)")
        for flag, value in (("--cpus-per-node", self.cpus_per_node), ("--gpus-per-node", self.gpus_per_node)):
            if value is not None and value < 0:
                raise UsageError(f"{flag} must be >= 0, got {value}")
        if not 1 <= self.ray_port <= 65535:
            raise UsageError(f"--ray-port must be a TCP port, got {self.ray_port}")
        if not os.path.isabs(self.exp_dir) or re.search(r"\s", self.exp_dir):
            raise UsageError(
                f"the experiment directory must be an absolute path without spaces (scheduler directives "
                f"name it), got {self.exp_dir!r}"
            )

    @property
    def walltime(self) -> str:
        return f"{self.time_minutes // 60:02d}:{self.time_minutes % 60:02d}:00"


def templates_dir() -> str:
    from hpcnas.balsam.render import jobscripts_dir

    path = os.path.join(jobscripts_dir(), "ray")
    if not os.path.isdir(path):
        raise HpcnasError(f"cannot find the Ray job-script templates in {path}; reinstall hpcnas")
    return path


def render_script(spec: RayJobSpec) -> str:
    """The batch script text for ``spec.scheduler``."""
    import jinja2

    spec.check()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: shlex.quote(str(value))
    template = env.get_template(SCHEDULERS[spec.scheduler][0])
    text = template.render(
        name=spec.name,
        nodes=spec.nodes,
        time_minutes=spec.time_minutes,
        walltime=spec.walltime,
        queue=spec.queue,
        project=spec.project,
        exp_dir=spec.exp_dir,
        activate_script=spec.activate_script,
        cpus_per_node=spec.cpus_per_node,
        gpus_per_node=spec.gpus_per_node,
        ray_port=spec.ray_port,
        start_timeout=spec.start_timeout,
        python=spec.python,
        scheduler_flags=list(spec.scheduler_flags),
        search_args=[shlex.quote(a) for a in spec.search_args],
        pythonpath=":".join(spec.pythonpath),
    )
    return text if text.endswith("\n") else text + "\n"


def submit_command(scheduler: str, script_path: str) -> list[str]:
    """The command that submits ``script_path`` (``sbatch --parsable`` or ``qsub``)."""
    program = SCHEDULERS[scheduler][1]
    return [program, "--parsable", script_path] if program == "sbatch" else [program, script_path]


def parse_job_id(scheduler: str, stdout: str) -> str:
    """The job id printed by the submit command (``123``, ``123;cluster``, ``123.pbs01``)."""
    text = stdout.strip()
    if scheduler == "slurm":
        match = re.search(r"^(\d+)", text) or re.search(r"Submitted batch job (\d+)", text)
    else:
        match = re.search(r"^(\d+(?:\.[\w.-]+)?)\s*$", text, re.MULTILINE)
    if not match:
        raise HpcnasError(f"cannot read a job id from the {SCHEDULERS[scheduler][1]} output: {text[:200]!r}")
    return match.group(1)
