"""Evaluation jobs created runnable: Balsam's own fast-forward, done once at creation.

A new ``BalsamJob`` is ``CREATED``; a transition process of the launcher later finds it and,
for a job with no parents, no remote stage-in and an application without a preprocess step,
moves it ``CREATED`` -> ``READY`` -> ``STAGED_IN`` -> ``PREPROCESSED`` in one pass
(``balsam.core.transitions.fast_forward``: it creates the working directory and checks those
three things, nothing else). For hpcnas's evaluation jobs all three are known when the search
master creates them, so :func:`make_runnable` does the same steps there: it creates the working
directory and writes the job ``PREPROCESSED`` with a ``state_history`` of ``CREATED`` then
``PREPROCESSED`` (so ``balsam ls --history`` and ``hpcnas-analytics`` read it as usual). The
job source can then pick the job up at its next fetch instead of after a transition period:
measured in ``docs/balsam.rst`` (``CREATED`` -> ``PREPROCESSED`` about 0.2-0.4 s before, 0 after).

If the runner application has been given a preprocess step (``balsam app --preprocess``), jobs
are created ``CREATED`` as before and Balsam runs it (:func:`runnable_at_creation`).
``HPCNAS_FAST_FORWARD=0`` turns this off.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

from hpcnas.core import environment

#: message of the ``PREPROCESSED`` line of a job made runnable at creation
MESSAGE = "hpcnas: no parents, stage-in or preprocess (fast-forwarded at creation)"


def runnable_at_creation(db: Any, app_name: str) -> bool:
    """Whether jobs of application ``app_name`` can be created ``PREPROCESSED``: the knob is on
    and the application has no preprocess step."""
    if not environment.switch("HPCNAS_FAST_FORWARD"):
        return False
    pre = db.ApplicationDefinition.objects.filter(name=app_name).values_list("preprocess", flat=True).first()
    return not (pre or "").strip()


def make_runnable(models: Any, jobs: Iterable[Any]) -> None:
    """Give each unsaved job (no parents, no ``stage_in_url``) its working directory and the
    state Balsam's transition would give it: ``PREPROCESSED``, history ``CREATED`` + ``PREPROCESSED``.

    A job whose directory cannot be made here stays ``CREATED`` (the launcher's transition
    makes it, as the launcher's user)."""
    for job in jobs:
        if job.stage_in_url or not make_directory(job.working_directory):
            continue
        job.state = "PREPROCESSED"
        job.state_history = models.history_line("CREATED") + models.history_line("PREPROCESSED", MESSAGE)


def make_directory(path: str) -> bool:
    """Create ``path`` and its missing parents, each owned like the nearest folder that existed
    (a search master run by root, as in CI, must not leave the launcher's user folders it
    cannot write); False where this process may not create it."""
    missing: list[str] = []
    existing = os.path.abspath(path)
    while not os.path.isdir(existing):
        missing.append(existing)
        existing = os.path.dirname(existing)
    try:
        os.makedirs(path, exist_ok=True)
        owner = os.stat(existing)
        if os.geteuid() == 0 and owner.st_uid != 0:
            for folder in missing:
                os.chown(folder, owner.st_uid, owner.st_gid)
    except OSError:
        return False
    return True


__all__ = ["MESSAGE", "make_directory", "make_runnable", "runnable_at_creation"]
