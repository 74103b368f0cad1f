"""The worker side of the local evaluator: one long-lived process per worker slot.

Started by :class:`~hpcnas.evaluator.local.LocalEvaluator` as a fresh interpreter that imports
only this module; it receives the master's ``sys.path``, working directory and run function
once, then evaluates configurations one at a time with
:func:`hpcnas.evaluator.runner.run_config`, one pickled message each way.
"""
from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from multiprocessing.connection import Connection
from typing import Any


def _set_parent_death_signal() -> None:
    """Linux: die with the master, so a killed master leaves no orphan workers behind."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _unpickle(by_value: bytes) -> Any:
    """The run function sent by value; one that cannot be rebuilt here fails every evaluation with
    one line (a module it needs is missing in the worker, ...)."""
    try:
        import cloudpickle

        return cloudpickle.loads(by_value)
    except Exception as err:  # noqa: BLE001 - reported per evaluation
        message = f"the worker cannot rebuild the run function sent by value ({type(err).__name__}: {err})"

        def unloadable(config: dict[str, Any]) -> float:
            from hpcnas.core.errors import HpcnasError

            raise HpcnasError(message)

        return unloadable


def worker_main(fd: int) -> None:
    """Worker process loop: ``init`` once, then ``run`` messages until ``stop`` or EOF."""
    _set_parent_death_signal()
    import faulthandler

    faulthandler.enable()  # a segfault leaves its Python traceback in the output tail
    from hpcnas.evaluator.runner import Outcome, run_config

    conn = Connection(fd)
    try:
        _, path, cwd, run_function, by_value = pickle.loads(conn.recv_bytes())
    except EOFError:
        return
    sys.path[:] = path + [p for p in sys.path if p not in path]
    os.chdir(cwd)
    if by_value is not None:
        run_function = _unpickle(by_value)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] != "run":
            return
        _, job_id, config, log_path = message
        conn.send(("start", job_id, time.time()))
        outcome = run_config(run_function, config, log_path)
        try:
            conn.send(("done", job_id, outcome))
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            outcome = Outcome(
                outcome.objective, outcome.status, outcome.error, outcome.start_time, outcome.end_time,
                {"metadata_dropped": f"not picklable: {err}"}, list(getattr(outcome, "reports", [])),
            )
            conn.send(("done", job_id, outcome))
        sys.stdout.flush()
        sys.stderr.flush()
