"""Balsam 0.x site settings: which machine the launcher runs on, written to ``~/.balsam``.

Balsam reads ``~/.balsam/settings.json`` (``balsam/django_config/settings.py``) and replaces it
with its Theta defaults when a key is missing, so :func:`install_site` always writes the full
set: Balsam's ``default_settings.json`` overlaid with the site's values. A :class:`BalsamSite`
is plain data; :data:`LOCAL_SITE` is a workstation (one node = this host, MPICH ``mpirun``,
all cores for packed serial jobs). The registry of sites by name (this one and the machine sites
built from the shipped site files: Theta, ThetaGPU, Polaris, Aurora, Perlmutter, Frontier, Slurm)
is :mod:`hpcnas.balsam.sites`, which depends on this module; nothing here imports it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from hpcnas.core.errors import HpcnasError

WORKER_DETECTION_TYPES = ("DEFAULT", "THETA", "THETA_GPU", "COOLEY", "SLURM")
MPI_RUN_TEMPLATES = (
    "MPICHCommand", "OpenMPICommand", "ThetaMPICommand", "ThetaGpuMPICommand",
    "CooleyMPICommand", "SlurmMPICommand", "BGQMPICommand",
)
SCHEDULER_CLASSES = ("CobaltScheduler", "SlurmScheduler")


@dataclass(frozen=True)
class BalsamSite:
    """One machine's Balsam settings.

    ``serial_cores_per_node=None`` means this host's core count at install time.
    ``job_template_text`` (optional) is written to ``~/.balsam/<job_template>`` so
    ``balsam submit-launch`` renders it; ``extra`` holds any further settings.json keys.
    """

    name: str
    worker_detection_type: str = "DEFAULT"
    mpi_run_template: str = "MPICHCommand"
    serial_cores_per_node: int | None = None
    serial_hyperthread_stride: int = 1
    scheduler_class: str = "CobaltScheduler"
    scheduler_submit_exe: str = "/usr/bin/qsub"
    scheduler_status_exe: str = "/usr/bin/qstat"
    job_template: str = "job-templates/theta.cobaltscheduler.tmpl"
    job_template_text: str | None = None
    default_project: str = "datascience"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        checks = (
            ("WORKER_DETECTION_TYPE", self.worker_detection_type, WORKER_DETECTION_TYPES),
            ("MPI_RUN_TEMPLATE", self.mpi_run_template, MPI_RUN_TEMPLATES),
            ("SCHEDULER_CLASS", self.scheduler_class, SCHEDULER_CLASSES),
        )
        for key, value, allowed in checks:
            if value not in allowed:
                raise HpcnasError(
                    f"site '{self.name}': {key}={value!r} is not known to Balsam 0.x; "
                    f"use one of {', '.join(allowed)}"
                )
        if self.serial_cores_per_node is not None and self.serial_cores_per_node < 1:
            raise HpcnasError(f"site '{self.name}': serial_cores_per_node must be >= 1")

    def settings(self) -> dict[str, Any]:
        """The settings.json keys this site sets (without Balsam's defaults)."""
        self.validate()
        cores = self.serial_cores_per_node or os.cpu_count() or 1
        values: dict[str, Any] = {
            "WORKER_DETECTION_TYPE": self.worker_detection_type,
            "MPI_RUN_TEMPLATE": self.mpi_run_template,
            "SERIAL_CORES_PER_NODE": int(cores),
            "SERIAL_HYPERTHREAD_STRIDE": int(self.serial_hyperthread_stride),
            "SCHEDULER_CLASS": self.scheduler_class,
            "SCHEDULER_SUBMIT_EXE": self.scheduler_submit_exe,
            "SCHEDULER_STATUS_EXE": self.scheduler_status_exe,
            "JOB_TEMPLATE": self.job_template,
            "DEFAULT_PROJECT": self.default_project,
            "HPCNAS_SITE": self.name,
        }
        values.update(self.extra)
        return values


LOCAL_SITE = BalsamSite(
    name="local",
    description="this workstation: one node (this host), MPICH mpirun, every core for serial jobs",
)

def balsam_home_dir(home: str | None = None) -> str:
    """``~/.balsam`` of the current user (``home`` overrides the folder itself)."""
    return os.path.abspath(os.path.expanduser(home or os.path.join("~", ".balsam")))


def balsam_default_settings() -> dict[str, Any]:
    """Balsam's own ``default_settings.json`` (read from the installed package, not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("balsam")
    if spec is None or not spec.submodule_search_locations:
        raise HpcnasError("Balsam is not installed: pip install 'hpcnas[balsam]'")
    path = os.path.join(list(spec.submodule_search_locations)[0], "django_config", "default_settings.json")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def install_site(site: BalsamSite, balsam_home: str | None = None) -> str:
    """Write ``settings.json`` for ``site`` into ``balsam_home`` (default ``~/.balsam``).

    Keeps keys the user added, overwrites the site's keys, fills every Balsam default, writes
    the job template when the site has one. Returns the settings.json path.
    """
    home = balsam_home_dir(balsam_home)
    os.makedirs(home, exist_ok=True)
    path = os.path.join(home, "settings.json")
    current: dict[str, Any] = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                current = json.load(fh)
        except ValueError:
            current = {}
    merged = {**balsam_default_settings(), **current, **site.settings()}
    if site.job_template_text is not None:
        template_path = os.path.join(home, site.job_template)
        os.makedirs(os.path.dirname(template_path), exist_ok=True)
        with open(template_path, "w", encoding="utf-8") as fh:
            fh.write(site.job_template_text)
    tmp = path + ".hpcnas-tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(merged, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def installed_site(balsam_home: str | None = None) -> str | None:
    """Name of the hpcnas site written in settings.json, or None."""
    path = os.path.join(balsam_home_dir(balsam_home), "settings.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh).get("HPCNAS_SITE")
    except (OSError, ValueError):
        return None
