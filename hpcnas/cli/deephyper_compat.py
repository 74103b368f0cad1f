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
  ``mpicomm`` / ``mpipool`` are refused;
* ``--eval-timeout-minutes M``: ``--eval-timeout`` ``60 * M`` seconds.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from hpcnas.core.errors import UsageError

SHORT = {"-p": "--problem", "-r": "--run"}
FILE_DEFAULT = {"--problem": "Problem", "--run": "run"}
LOCAL_ALIASES = {"subprocess", "processPool", "threadPool", "process", "thread"}
REFUSED_EVALUATORS = {
    "mpicomm": "--evaluator balsam with a launcher in --job-mode mpi, or --evaluator ray",
    "mpipool": "--evaluator balsam with a launcher in --job-mode mpi, or --evaluator ray",
    "serial": "--evaluator local --num-workers 1",
}
ACQ_ALIASES = {"LCB": "UCB"}
REFUSED_ACQ = {"gp_hedge": "--acq-func UCB (the default), EI or PI"}


def _note(text: str) -> None:
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
