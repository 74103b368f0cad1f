"""DeepHyper 0.2 / 0.13 command-line habits, taken as they are typed (docs/from_deephyper.rst).

:func:`translate` rewrites a search's ``argv`` before it is parsed: each DeepHyper spelling
becomes the hpcnas one, with one ``hpcnas: note:`` line on stderr when the meaning is mapped
(not just renamed); a DeepHyper spelling hpcnas cannot honour is a one-line
:class:`~hpcnas.core.errors.UsageError` naming the hpcnas spelling.

* ``-p`` / ``-r``: ``--problem`` / ``--run``;
* ``--problem path/to/problem.py`` / ``--run path/to/model_run.py``: the file's ``Problem`` /
  ``run`` (absolute ``FILE.py:NAME``, so Balsam jobs and worker processes find it too);
* ``--acq-func LCB``: ``UCB`` (DeepHyper minimises ``-objective``: its lower confidence bound
  is hpcnas's upper one); ``gp_hedge`` is refused;
* ``--evaluator subprocess|processPool|threadPool``: ``local`` (worker processes);
* ``--evaluator mpicomm``: ``mpi`` (the same layout: the search on rank 0 of ``mpirun -n N``,
  evaluations on the other ranks); ``mpipool`` is refused (DeepHyper spawned its workers with
  ``MPI_Comm_spawn``; hpcnas's come from ``mpirun -n N``), naming ``--evaluator mpi``;
* ``--eval-timeout-minutes M``: ``--eval-timeout`` ``60 * M`` seconds;
* ``balsam-submit hps WORKFLOW -p P -r R ... -j MODE`` (DeepHyper's layout, a workflow name
  where hpcnas has the search): :func:`submit_layout` makes it ``balsam-submit hps ambs
  -w WORKFLOW`` (``nas``: ``agebo``, or DeepHyper's ``--nas-method``);
* ``ray-submit`` without ``--scheduler``: the installed site's (:func:`site_scheduler`).
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from hpcnas.core.errors import UsageError

SHORT = {"-p": "--problem", "-r": "--run"}
FILE_DEFAULT = {"--problem": "Problem", "--run": "run"}
LOCAL_ALIASES = {"subprocess", "processPool", "threadPool", "process", "thread"}
MPI_ALIASES = {"mpicomm"}
REFUSED_EVALUATORS = {
    "mpipool": "--evaluator mpi under mpirun -n N (its workers are ranks 1..N-1 of the job: hpcnas does not "
    "spawn MPI processes)",
    "serial": "--evaluator local --num-workers 1",
}
ACQ_ALIASES = {"LCB": "UCB"}
REFUSED_ACQ = {"gp_hedge": "--acq-func UCB (the default), EI or PI"}


def _note(text: str) -> None:
    from hpcnas.core.mpi_env import launcher_rank

    if launcher_rank() not in (None, 0):  # mpirun -n N hpcnas ...: the note once, from rank 0
        return
    print(f"hpcnas: note: {text}", file=sys.stderr, flush=True)


WATCHED = ("--problem", "--run", "--acq-func", "--evaluator", "--eval-timeout-minutes")


def translate(argv: Sequence[str]) -> list[str]:
    """``argv`` with DeepHyper's spellings replaced by hpcnas's (see the module docstring).

    Tokens of other options are kept exactly as typed."""
    argv = list(argv)
    tokens: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name, inline = token.split("=", 1) if token.startswith("--") and "=" in token else (token, None)
        name = SHORT.get(name, name)
        if name not in WATCHED:
            tokens.append(argv[i])
            i += 1
        elif inline is not None:
            tokens += _one(name, inline)
            i += 1
        elif i + 1 < len(argv):
            tokens += _one(name, argv[i + 1])
            i += 2
        else:
            tokens.append(name)
            i += 1
    return tokens


def _one(name: str, value: str) -> list[str]:
    if name in FILE_DEFAULT and value.endswith(".py") and ":" not in value:
        return [name, f"{os.path.abspath(value)}:{FILE_DEFAULT[name]}"]
    if name == "--acq-func":
        if value in REFUSED_ACQ:
            raise UsageError(f"--acq-func {value} (DeepHyper) is not available in hpcnas: use {REFUSED_ACQ[value]}")
        if value in ACQ_ALIASES:
            _note(f"--acq-func {value} is DeepHyper's name (it minimises -objective); hpcnas maximises and "
                  f"calls it --acq-func {ACQ_ALIASES[value]}")
            return [name, ACQ_ALIASES[value]]
    if name == "--evaluator":
        if value in REFUSED_EVALUATORS:
            raise UsageError(
                f"--evaluator {value} (DeepHyper) is not available in hpcnas: use {REFUSED_EVALUATORS[value]}"
            )
        if value in MPI_ALIASES:
            _note(f"--evaluator {value} is DeepHyper's; hpcnas runs it as --evaluator mpi (the search on rank 0 "
                  "of mpirun -n N, evaluations on ranks 1..N-1)")
            return [name, "mpi"]
        if value in LOCAL_ALIASES:
            _note(f"--evaluator {value} is DeepHyper's; hpcnas runs it as --evaluator local "
                  "(a pool of worker processes: crashes and hangs stay in their process)")
            return [name, "local"]
    if name == "--eval-timeout-minutes":
        try:
            minutes = float(value)
        except ValueError:
            raise UsageError(f"--eval-timeout-minutes {value!r} is not a number of minutes: "
                             "give e.g. --eval-timeout-minutes 10 (or --eval-timeout SECONDS)") from None
        return ["--eval-timeout", repr(minutes * 60.0)]
    return [name, value]


#: DeepHyper's balsam-submit ran AMBS for hps, and --nas-method (default agebo) for nas
SUBMIT_DEFAULT_SEARCH = {"hps": "ambs", "nas": "agebo"}


def submit_layout(family: str | None, search: str | None, options: Sequence[str]) -> tuple[str | None, list[str]]:
    """``(search, options)`` of ``balsam-submit FAMILY SEARCH options`` given DeepHyper's layout
    ``balsam-submit FAMILY WORKFLOW options`` (no ``-w``): the workflow becomes ``-w WORKFLOW``."""
    from hpcnas.search.base import search_names

    options = list(options)
    if family not in SUBMIT_DEFAULT_SEARCH or not search or search.startswith("-"):
        return search, options
    if search in search_names(family):
        return search, options
    if any(o in ("-w", "--workflow") or o.startswith("--workflow=") for o in options):
        return search, options  # a misspelt search: its own error names the searches
    method = SUBMIT_DEFAULT_SEARCH[family]
    for i, option in enumerate(options):
        if option == "--nas-method" and i + 1 < len(options):
            method = options[i + 1]
            del options[i:i + 2]
            break
        if option.startswith("--nas-method="):
            method = option.split("=", 1)[1]
            del options[i]
            break
    _note(f"balsam-submit {family} {search} is DeepHyper's layout (a workflow name); hpcnas spells it "
          f"balsam-submit {family} {method} -w {search}")
    return method, ["-w", search, *options]


#: Balsam's scheduler class -> ray-submit's --scheduler
SCHEDULER_OF_CLASS = {"CobaltScheduler": "cobalt", "SlurmScheduler": "slurm"}


def site_scheduler() -> str:
    """``--scheduler`` of the machine written by ``hpcnas balsam-setup --machine NAME``."""
    from hpcnas.balsam.settings import installed_site
    from hpcnas.balsam.sites import get_site

    name = installed_site()
    site = get_site(name) if name and name != "local" else None
    scheduler = SCHEDULER_OF_CLASS.get(site.scheduler_class) if site is not None else None
    if scheduler is None:
        raise UsageError(
            f"ray-submit needs --scheduler cobalt|pbs|slurm: this machine's site is {name or 'not set'} "
            "(set it once with hpcnas balsam-setup --machine NAME, or give --scheduler)"
        )
    return scheduler
