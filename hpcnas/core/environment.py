"""The environment variables hpcnas reads: one table (:data:`VARIABLES`) and one reader.

Components ask :func:`text`, :func:`flag`, :func:`switch`, :func:`number` or :func:`seconds` for a variable of the table, where
they are built, and pass the value down (the Balsam evaluator reads ``HPCNAS_DB_RETRY_S`` when it
is built, not when its module is imported). A bad value is one line naming the variable and the
fix (a :class:`~hpcnas.core.errors.UsageError`, exit code 2), never a traceback. Still parsing
their own variables of the table: the worker plan (:mod:`hpcnas.balsam.workers`, which reads
Balsam's and the schedulers' variables too) and the NAS problems' data folders. Variables that are protocol between hpcnas's own processes (the
scheduler's address carried to evaluations, the launcher's child marker) are in the table too, so
that it lists every name hpcnas gives a meaning to.
"""
from __future__ import annotations

import os
from typing import Mapping

#: name -> (meaning, default as text; ``None``: unset)
VARIABLES: dict[str, tuple[str, str | None]] = {
    # the command line
    "HPCNAS_DEBUG": ("1: a failing command shows its traceback instead of one line", None),
    "HPCNAS_THREAD_GRACE_S": ("seconds the command waits for threads the run function left running", "2"),
    "HPCNAS_PYTHON": ("the Python of the Ray nodes in ray-submit's job script", None),
    "HPCNAS_JOBSCRIPTS": ("the jobscripts/ folder (site files and job-script templates)", None),
    # evaluators
    "HPCNAS_DB_RETRY_S": ("seconds the master keeps retrying a Balsam DB that stopped answering", "900"),
    "HPCNAS_WORKER": ("set by the local evaluator in each worker process: its name", None),
    "HPCNAS_WORKERS_PER_NODE": ("Balsam evaluator: evaluations per node without --num-evals-per-node", None),
    # multi-fidelity (protocol: carried to evaluations by the evaluators)
    "HPCNAS_MF_ADDRESS": ("the policy server's host:port (host/port in Balsam jobs)", None),
    "HPCNAS_MF_AUTHKEY": ("the policy server's key, hex", None),
    "HPCNAS_MF_BIND": ("the address the policy server listens on", "0.0.0.0"),
    "HPCNAS_MF_HOST": ("the address evaluations use to reach the policy server (default: this host's IP)", None),
    # the Balsam launcher
    "HPCNAS_ENSEMBLE_PORT": ("the port of the serial-ensemble master", None),
    "HPCNAS_ENSEMBLE_IDLE_S": ("seconds without a running job before the ensemble master looks at the workflow",
                               "0.25"),
    "HPCNAS_WORKER_LOST_S": ("seconds without a message from a serial-ensemble worker before it counts as lost",
                             "20"),
    "HPCNAS_LAUNCHER_SUPERVISE": ("0: run Balsam's launcher without hpcnas's supervisor", "1"),
    "HPCNAS_LAUNCHER_CHILD": ("protocol: set in the supervised launcher process", None),
    "HPCNAS_LAUNCHER_LOCK": ("0: no one-launcher-per-workflow lock", "1"),
    "HPCNAS_JOBSOURCE_S": ("launcher pacing: seconds between the ensemble master's fetches of jobs", "0.05"),
    "HPCNAS_STATUS_BATCH_S": ("launcher pacing: seconds the ensemble master batches state updates", "0.05"),
    "HPCNAS_TRANSITION_S": ("launcher pacing: seconds between the transition processes' looks", "0.5"),
    "HPCNAS_WORKER_S": ("launcher pacing: seconds between a serial worker's polls", "0.05"),
    "HPCNAS_FAST_FORWARD": ("0: the Balsam evaluator creates its jobs CREATED (a transition process moves them on)",
                            "1"),
    "HPCNAS_FORK_SERVER": ("0: serial-mode evaluations start as fresh interpreters, not forks of the fork server",
                           "1"),
    "HPCNAS_FORK_PRELOAD": ("comma-separated modules the fork server imports once for every evaluation", None),
    "HPCNAS_ACTIVATE": ("the shell line a submitted job script runs to activate hpcnas's environment", None),
    "HPCNAS_MPIRUN": ("the machine's MPI launcher, for the Hpcnas* MPI commands (job scripts set it)", None),
    # NAS
    "HPCNAS_TF_CPU_DEVICES": ("TensorFlow CPU devices per process of data-parallel training", None),
    "HPCNAS_ATTN_DATA": ("folder of the attn problem's data", None),
    "HPCNAS_COMBO_DATA": ("folder of the combo problem's data", None),
}


def _known(name: str) -> tuple[str, str | None]:
    try:
        return VARIABLES[name]
    except KeyError:
        raise KeyError(f"{name} is not an hpcnas environment variable: declare it in VARIABLES") from None


def text(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The value of ``name`` (its default when unset or empty)."""
    _, default = _known(name)
    value = (os.environ if env is None else env).get(name)
    return value if value not in (None, "") else default


def flag(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``name`` is on: set to anything but ``""`` and ``"0"``."""
    return text(name, env) not in (None, "", "0")


def switch(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``name`` is ``1`` (on) or ``0`` (off), its default when unset; any other value is a
    one-line :class:`UsageError` (for a variable whose typo must not silently mean "off")."""
    raw = (text(name, env) or "").strip()
    if raw in ("0", "1"):
        return raw == "1"
    from hpcnas.core.errors import UsageError

    meaning, default = VARIABLES[name]
    raise UsageError(f"environment variable {name}={raw!r} is neither 0 nor 1 ({meaning}): set it to 0 or 1, "
                     f"or unset it (default {default})")


def number(name: str, env: Mapping[str, str] | None = None, minimum: float = 0.0,
           integer: bool = False) -> float | None:
    """The number ``name`` holds (``None`` when unset without a default); a value that is not a
    number ``>= minimum`` (an integer when ``integer``) is a one-line :class:`UsageError`."""
    from hpcnas.core.errors import UsageError

    raw = text(name, env)
    if raw is None:
        return None
    try:
        value = float(raw)
        ok = value >= minimum and (not integer or value.is_integer())
    except ValueError:
        ok = False
    if not ok:
        meaning, default = VARIABLES[name]
        kind = "an integer" if integer else "a number"
        example = f" such as {default}" if default is not None else ""
        raise UsageError(f"environment variable {name}={raw!r} is not {kind} >= {minimum:g} ({meaning}): "
                         f"unset it or give {kind}{example}")
    return value


def seconds(name: str, env: Mapping[str, str] | None = None) -> float:
    """The positive number of seconds ``name`` holds (its default when unset); ``0``, a negative
    value or text is a one-line :class:`UsageError`."""
    from hpcnas.core.errors import UsageError

    raw = text(name, env)
    try:
        value = float(raw) if raw is not None else float("nan")
    except ValueError:
        value = float("nan")
    if not value > 0:
        meaning, default = VARIABLES[name]
        raise UsageError(f"environment variable {name}={raw!r} is not a positive number of seconds ({meaning}): "
                         f"unset it or give one such as {default}")
    return value
