"""Balsam jobs' ``.out`` files: a job run again keeps the output of its earlier attempts.

Balsam 0.x opens ``<job name>.out`` in the job's working directory with mode ``w`` each time it
starts the job, so a job run again -- restarted after a launcher died or an allocation ended
(``RUN_TIMEOUT`` -> ``RESTART_READY``), retried after an error -- loses the output of the
attempt before. Under the hpcnas launcher (:mod:`hpcnas.balsam.launch`) the ``open`` of
Balsam's launcher module (MPI mode) and of its serial-mode ensemble script is
:func:`keeping_open`: an existing, non-empty ``NAME.out`` is first renamed ``NAME.out.1``
(then ``.2``, ... for later attempts), and the new attempt writes ``NAME.out`` as before (the
file the evaluator reads).

The serial launcher's ensemble (:mod:`hpcnas.balsam.ensemble`) installs it in Balsam's
``serial_mode_timed`` module.
"""
from __future__ import annotations

import builtins
import os
from typing import Any

#: Balsam's own logs (the launcher's ``ensemble.out``) are left alone
SKIPPED = ("ensemble.out",)


def previous_attempts(path: str) -> list[str]:
    """The kept outputs of earlier attempts of the ``.out`` file ``path``, oldest first."""
    found = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        found.append(f"{path}.{n}")
        n += 1
    return found


def keep_previous(path: str) -> str | None:
    """Rename a non-empty ``path`` to the next free ``path.N``; return that name (or ``None``)."""
    try:
        if os.path.getsize(path) == 0:
            return None
    except OSError:
        return None
    target = f"{path}.{len(previous_attempts(path)) + 1}"
    try:
        os.replace(path, target)
    except OSError:  # keep Balsam going: the old output is then overwritten, as without hpcnas
        return None
    return target


def keeping_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    """``open`` that keeps an existing job ``.out`` file before writing it anew (module docstring)."""
    if (
        isinstance(file, (str, os.PathLike))
        and isinstance(mode, str)
        and mode.startswith("w")
        and os.fspath(file).endswith(".out")
        and os.path.basename(os.fspath(file)) not in SKIPPED
    ):
        keep_previous(os.fspath(file))
    return builtins.open(file, mode, *args, **kwargs)


def install(module: Any) -> None:
    """Make ``open`` inside ``module`` (Balsam's launcher module) :func:`keeping_open`."""
    module.open = keeping_open

