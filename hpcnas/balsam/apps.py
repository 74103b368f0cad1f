"""Balsam application definitions of hpcnas: the search masters and the evaluation runner.

A search app runs the hpcnas CLI (``python -m hpcnas.cli.main hps ambs`` + the job's args),
so ``balsam job --application AMBS --args '--evaluator balsam --problem P --run R ...'``
starts an AMBS search; the runner app (:data:`RUNNER_APP`) is what the Balsam evaluator puts
in each evaluation job. Registration is idempotent: an app whose command line changed (another
Python) is updated in place.
"""
from __future__ import annotations

import sys
from typing import Any

#: app name -> (hpcnas CLI arguments, description)
SEARCH_APPS: dict[str, tuple[str, str]] = {
    "AMBS": ("hps ambs", "asynchronous model-based search (Bayesian optimisation) of hyper-parameters"),
    "RANDOM": ("hps random", "random search of hyper-parameters"),
    "AGE": ("nas age", "aging evolution (regularised evolution) neural architecture search"),
    "AGEBO": ("nas agebo", "aging evolution on architectures + Bayesian optimisation of hyper-parameters"),
}
RUNNER_APP = "HPCNAS_RUN"
#: node_packing_count of a search job in serial mode: it takes 1/1000 of a node, no eval slot
MASTER_PACKING = 1000
RUNNER_MODULE = "hpcnas.balsam.job_runner"


def app_commands(python: str | None = None) -> dict[str, tuple[str, str]]:
    """``{name: (executable, description)}`` of every hpcnas app for this Python."""
    python = python or sys.executable
    apps = {
        name: (f"{python} -m hpcnas.cli.main {cli}", description)
        for name, (cli, description) in SEARCH_APPS.items()
    }
    apps[RUNNER_APP] = (f"{python} -m {RUNNER_MODULE}", "hpcnas: evaluate one configuration")
    return apps


def register_apps(python: str | None = None, names: list[str] | None = None, db: Any = None) -> dict[str, str]:
    """Create or update the apps in the active Balsam DB; returns ``{name: 'added'|'updated'|'ok'}``."""
    from hpcnas.balsam.connect import connect

    db = db or connect()
    AppDef = db.ApplicationDefinition
    status: dict[str, str] = {}
    for name, (executable, description) in app_commands(python).items():
        if names and name not in names:
            continue
        app = AppDef.objects.filter(name=name).first()
        if app is None:
            AppDef.objects.create(name=name, executable=executable, description=description)
            status[name] = "added"
        elif app.executable != executable:
            app.executable = executable
            app.description = description
            app.save(update_fields=["executable", "description"])
            status[name] = "updated"
        else:
            status[name] = "ok"
    return status


def ensure_runner_app(db: Any, python: str | None = None) -> str:
    """Register :data:`RUNNER_APP` if it is missing (an existing definition is kept)."""
    if not db.ApplicationDefinition.objects.filter(name=RUNNER_APP).exists():
        register_apps(python, names=[RUNNER_APP], db=db)
    return RUNNER_APP


def create_search_job(
    db: Any,
    application: str,
    args: str,
    workflow: str,
    name: str = "search",
    node_packing_count: int = MASTER_PACKING,
    num_nodes: int = 1,
    wall_time_minutes: int = 60,
    environ_vars: str = "",
) -> Any:
    """Create the search-master job (what ``balsam job --application AMBS ...`` does).

    The default ``node_packing_count`` (:data:`MASTER_PACKING`) makes the master take 1/1000 of
    its node in serial mode instead of the whole node (mpi mode ignores it and gives a node).
    """
    from hpcnas.core.errors import HpcnasError

    if not db.ApplicationDefinition.objects.filter(name=application).exists():
        raise HpcnasError(f"Balsam app '{application}' is not registered: run hpcnas balsam-apps")
    return db.BalsamJob.objects.create(
        name=name, workflow=workflow, application=application, args=args,
        node_packing_count=node_packing_count, num_nodes=num_nodes, ranks_per_node=1,
        wall_time_minutes=wall_time_minutes, environ_vars=environ_vars, cpu_affinity="none",
    )
