"""The worker side of the local evaluator: one long-lived process per worker slot.

Started by :class:`~hpcnas.evaluator.local.LocalEvaluator` as a fork of a zygote that imported
this module (:mod:`hpcnas.evaluator.local_spawn`), or as a fresh interpreter that imports only
this module; it receives the master's ``sys.path``, working directory and run function
once, then evaluates configurations one at a time with
:func:`hpcnas.evaluator.runner.run_config`, one pickled message each way (the outcome in its wire
form, :meth:`hpcnas.core.trial.Outcome.to_wire`).

:func:`pack_run_function` (in the master) and ``_unpickle`` (here) are how the run function
travels: by reference, or by value with ``cloudpickle``.
"""
from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from multiprocessing.connection import Connection
from typing import Any, Callable


def _set_parent_death_signal() -> None:
    """Linux: die with the master, so a killed master leaves no orphan workers behind."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def pack_run_function(run_function: str | Callable[..., Any]) -> tuple[str | Callable[..., Any] | None, bytes | None]:
    """How the worker processes get the run function: ``(reference, None)`` or ``(None, by_value)``.

    * a dotted path, or a module-level function of an importable module: by reference (the
      workers import it); a function hpcnas loaded from a file (``/path/script.py:run``): by
      that path;
    * anything else -- a function of the script being run (module ``__main__``), of a notebook,
      a lambda, a closure -- by value, pickled with ``cloudpickle`` along with the globals it
      uses: the workers never import the script, so its top-level code (a search without an
      ``if __name__ == "__main__":`` guard) does not run again there;
    * a function of the script that ``cloudpickle`` cannot pickle (it uses a lock, an open
      connection ...): as ``/path/script.py:name``, loaded from the file under another module
      name by the workers (its ``__main__`` block does not run; a search at its top level is
      refused there, :func:`hpcnas.evaluator.runner.importing_run_function`).
    """
    from hpcnas.core.errors import UsageError

    if isinstance(run_function, str):
        return run_function, None
    module = getattr(run_function, "__module__", None)
    name = getattr(run_function, "__qualname__", "") or repr(run_function)
    loaded_from = getattr(sys.modules.get(module or ""), "__file__", None)
    if module and module.startswith("_hpcnas_user_") and loaded_from and name.isidentifier():
        return f"{loaded_from}:{name}", None  # hpcnas loaded it from that file (``/path/script.py:run``)
    if module not in (None, "__main__"):
        try:
            pickle.dumps(run_function)
            return run_function, None
        except Exception:  # noqa: BLE001 - lambdas, closures, local functions: by value
            pass
    import cloudpickle

    try:
        return None, cloudpickle.dumps(run_function)
    except Exception as err:  # noqa: BLE001 - unpicklable globals
        reason = f"{type(err).__name__}: {err}"
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if module == "__main__" and main_file and name.isidentifier():
        return f"{os.path.abspath(main_file)}:{name}", None
    raise UsageError(
        f"the local evaluator cannot send run function {name!r} to its worker processes ({reason}): "
        "define it at module level in a module and give it as 'package.module.run', or keep what it "
        "cannot pickle out of its globals"
    )


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
    from hpcnas.evaluator.runner import run_config

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
        _, job_id, config, log_path, env = message
        conn.send(("start", job_id, time.time()))
        wire = run_config(run_function, config, log_path, env, trial_id=job_id).to_wire()
        try:
            conn.send(("done", job_id, wire))
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            wire["metadata"] = {"metadata_dropped": f"not picklable: {err}"}
            conn.send(("done", job_id, wire))
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":  # a fork of the zygote (hpcnas.evaluator.local_spawn): the imported module's worker_main
    from hpcnas.evaluator.local_worker import worker_main as _main

    _main(int(sys.argv[1]))
