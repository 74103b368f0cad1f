"""Machine sites for Balsam 0.5: Theta, ThetaGPU, Polaris, Aurora, Perlmutter, Frontier, any Slurm cluster.

Each machine is described by one shipped file, ``jobscripts/sites/<name>.json``::

    {"name": ..., "description": ..., "template": "<file in jobscripts/templates>" | null,
     "gpus_per_node": G, "launch_example": "<URL of the centre's published launch example>",
     "balsam_settings": {<every key of Balsam's settings.json>}}

``HPCNAS_SUBMIT`` (``qsub`` / ``sbatch``) in the settings marks a site whose job script hpcnas
renders and submits itself (:mod:`hpcnas.balsam.submit_script`): Balsam 0.5 cannot submit to
PBS Pro, and its template context cannot forward the submitting environment.

``SERIAL_CORES_PER_NODE: "auto"`` means the core count of the host where the site is
installed. This module owns the one registry of sites (:func:`get_site`, :func:`site_names`,
:func:`register_site`): it turns the files into :class:`~hpcnas.balsam.settings.BalsamSite` objects
(also module-level constants), so ``hpcnas balsam-setup --machine NAME`` writes
``~/.balsam/settings.json`` and ``~/.balsam/job-templates/hpcnas-<template>`` with
:func:`hpcnas.balsam.settings.install_site`. Every file of ``jobscripts/sites`` but ``local.json``
becomes a site of the registry. The workstation site (``local``) is
:data:`hpcnas.balsam.settings.LOCAL_SITE`; ``jobscripts/sites/local.json`` documents the same values.

============  ===============  ======================  ============  ==========================
site          scheduler        MPI_RUN_TEMPLATE        detection     serial cores per node
============  ===============  ======================  ============  ==========================
theta         Cobalt           ThetaMPICommand         THETA         64
thetagpu      Cobalt           HpcnasOpenMPIHostfile…  THETA_GPU     128 (8 GPUs per node)
polaris       PBS Pro (qsub)   HpcnasPalsCommand       THETA_GPU     32 (4 GPUs per node)
aurora        PBS Pro (qsub)   HpcnasPalsCommand       THETA_GPU     104 (6 GPUs per node)
perlmutter    SlurmScheduler   HpcnasSrunCommand       SLURM         128 (CPU nodes)
frontier      SlurmScheduler   HpcnasSrunCommand       SLURM         56 (8 GCDs per node)
slurm         SlurmScheduler   HpcnasSrunCommand       SLURM         this host's cores
============  ===============  ======================  ============  ==========================

(PBS sites keep ``SCHEDULER_CLASS=CobaltScheduler`` only because Balsam accepts no other value;
nodes come from ``$PBS_NODEFILE``, handed over as ``COBALT_NODEFILE``.)

The ``Hpcnas*`` MPI commands are plug-ins (:mod:`hpcnas.balsam.mpi_commands`) that exist only
in a launcher started by ``python -m hpcnas.balsam.launch``, which the shipped job scripts do.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

from hpcnas.balsam import settings as _settings
from hpcnas.balsam.mpi_commands import PLUGIN_NAMES
from hpcnas.balsam.render import jobscripts_dir, read_template
from hpcnas.core.errors import HpcnasError

__all__ = [
    "MachineSite", "THETA", "THETAGPU", "SLURM", "POLARIS", "AURORA", "PERLMUTTER", "FRONTIER",
    "get_site", "site_names", "load_site_file", "register_site",
]

#: settings.json keys that map onto BalsamSite fields; every other key goes to ``extra``
_FIELDS = {
    "WORKER_DETECTION_TYPE": "worker_detection_type",
    "MPI_RUN_TEMPLATE": "mpi_run_template",
    "SERIAL_CORES_PER_NODE": "serial_cores_per_node",
    "SERIAL_HYPERTHREAD_STRIDE": "serial_hyperthread_stride",
    "SCHEDULER_CLASS": "scheduler_class",
    "SCHEDULER_SUBMIT_EXE": "scheduler_submit_exe",
    "SCHEDULER_STATUS_EXE": "scheduler_status_exe",
    "JOB_TEMPLATE": "job_template",
    "DEFAULT_PROJECT": "default_project",
}


@dataclass(frozen=True)
class MachineSite(_settings.BalsamSite):
    """A :class:`BalsamSite` that may name hpcnas's MPI plug-ins and knows its template file."""

    template: str | None = None
    gpus_per_node: int = 0
    launch_example: str = ""

    def validate(self) -> None:
        if self.mpi_run_template in PLUGIN_NAMES:
            # the plug-in is valid; let the base class check the remaining fields
            dataclasses.replace(self, mpi_run_template="MPICHCommand").validate_base()
        else:
            self.validate_base()
        if self.template and self.job_template_text is None:
            raise HpcnasError(
                f"site '{self.name}': job template '{self.template}' is missing from "
                f"{os.path.join('jobscripts', 'templates')}; reinstall hpcnas or set HPCNAS_JOBSCRIPTS"
            )

    def validate_base(self) -> None:
        _settings.BalsamSite.validate(self)

    def with_cores(self, cores_per_node: int | None) -> "MachineSite":
        """A copy with another ``SERIAL_CORES_PER_NODE`` (None: the installing host's)."""
        if cores_per_node is not None and cores_per_node < 1:
            raise HpcnasError(f"cores per node must be >= 1, got {cores_per_node}")
        return dataclasses.replace(self, serial_cores_per_node=cores_per_node)


def load_site_file(path: str) -> MachineSite:
    """Build a :class:`MachineSite` from a site JSON file (format in the module docstring)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        name = data["name"]
        values = dict(data["balsam_settings"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise HpcnasError(f"cannot read site file '{path}': {err}") from err
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in values.items():
        if key in _FIELDS:
            kwargs[_FIELDS[key]] = value
        else:
            extra[key] = value
    if kwargs.get("serial_cores_per_node") == "auto":
        kwargs["serial_cores_per_node"] = None
    template = data.get("template")
    text = None
    if template:
        try:
            text = read_template(template)
        except HpcnasError:
            text = None
    return MachineSite(
        name=name,
        description=data.get("description", ""),
        template=template,
        job_template_text=text,
        gpus_per_node=int(data.get("gpus_per_node", 0)),
        launch_example=str(data.get("launch_example", "")),
        extra=extra,
        **kwargs,
    )


def _shipped(name: str) -> MachineSite:
    return load_site_file(os.path.join(jobscripts_dir(), "sites", f"{name}.json"))


def _shipped_names() -> list[str]:
    folder = os.path.join(jobscripts_dir(), "sites")
    return sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".json") and f != "local.json")


#: the sites by name: the workstation and every shipped machine file
_SITES: dict[str, _settings.BalsamSite] = {"local": _settings.LOCAL_SITE}
for _name in _shipped_names():
    _SITES.setdefault(_name, _shipped(_name))

THETA = _SITES["theta"]
THETAGPU = _SITES["thetagpu"]
SLURM = _SITES["slurm"]
POLARIS = _SITES["polaris"]
AURORA = _SITES["aurora"]
PERLMUTTER = _SITES["perlmutter"]
FRONTIER = _SITES["frontier"]


def register_site(site: _settings.BalsamSite) -> _settings.BalsamSite:
    """Make ``site`` available to ``hpcnas balsam-setup --machine NAME``."""
    site.validate()
    _SITES[site.name] = site
    return site


def site_names() -> list[str]:
    """Every machine ``hpcnas balsam-setup --machine`` accepts (``local`` included)."""
    return sorted(_SITES)


def get_site(name: str, cores_per_node: int | None = None) -> _settings.BalsamSite:
    """The site called ``name``; ``cores_per_node`` overrides its serial core count."""
    try:
        site = _SITES[name.strip().lower()]
    except KeyError:
        raise HpcnasError(f"unknown machine '{name}': choose one of {', '.join(sorted(_SITES))}") from None
    if cores_per_node is not None:
        if isinstance(site, MachineSite):
            return site.with_cores(cores_per_node)
        return dataclasses.replace(site, serial_cores_per_node=int(cores_per_node))
    return site
