"""Run functions for evaluator and search tests, importable as ``tests.support.run_functions.<name>``.

Each one behaves in one well-defined way (succeed, raise, exit, crash, hang, print a lot, return
something that is not a number) so the shared evaluator suite can check how a backend reports it.
"""
from __future__ import annotations

import ctypes
import os
import sys
import time
from typing import Any


def quadratic(config: dict[str, Any]) -> float:
    """Maximum 0 at x = 0 (and y = 0 if present)."""
    return -float(config.get("x", 0.0)) ** 2 - float(config.get("y", 0.0)) ** 2


def echo(config: dict[str, Any]) -> float:
    """Returns ``config["value"]`` (default 1.0)."""
    return float(config.get("value", 1.0))


def with_metadata(config: dict[str, Any]) -> dict[str, Any]:
    return {"objective": float(config.get("x", 1.0)), "epochs": 3}


def sleep_then_echo(config: dict[str, Any]) -> float:
    """Sleeps ``config["sleep"]`` seconds (default 0.2), then returns ``config.get("value", 1.0)``."""
    time.sleep(float(config.get("sleep", 0.2)))
    return float(config.get("value", 1.0))


def pid(config: dict[str, Any]) -> float:
    """Returns the evaluating process id (checks worker reuse and isolation)."""
    return float(os.getpid())


def raise_error(config: dict[str, Any]) -> float:
    raise ValueError("boom from the run function")


def call_sys_exit(config: dict[str, Any]) -> float:
    sys.exit(3)


def call_os_exit(config: dict[str, Any]) -> float:
    print("about to leave with os._exit(7)", flush=True)
    os._exit(7)


def segfault(config: dict[str, Any]) -> float:
    ctypes.string_at(0)  # dereferences NULL: SIGSEGV
    return 0.0


def return_nan(config: dict[str, Any]) -> float:
    return float("nan")


def return_inf(config: dict[str, Any]) -> float:
    return float("inf")


def return_string(config: dict[str, Any]) -> str:
    return "not a number"


def return_none(config: dict[str, Any]) -> None:
    return None


def hang(config: dict[str, Any]) -> float:
    """Never returns (the evaluator's --eval-timeout must stop it)."""
    while True:
        time.sleep(0.05)


def print_a_lot(config: dict[str, Any]) -> float:
    """Writes ``config["megabytes"]`` MB (default 1024) to stdout, then returns 1.0."""
    block = ("x" * 1023 + "\n") * 1024  # 1 MiB
    out = sys.stdout
    for _ in range(int(config.get("megabytes", 1024))):
        out.write(block)
    out.flush()
    return 1.0


def simulated(config: dict[str, Any]) -> dict[str, Any]:
    """For the simulated evaluator: objective -x**2, duration ``config["duration"]`` (default 10)."""
    return {"objective": -float(config.get("x", 0.0)) ** 2, "duration": float(config.get("duration", 10.0))}


def duration_of(config: dict[str, Any]) -> float:
    return float(config.get("duration", 5.0))


def maybe_crash(config: dict[str, Any]) -> float:
    """``os._exit(9)`` when ``config["crash"]`` is true, else returns ``config["value"]``."""
    if config.get("crash"):
        os._exit(9)
    return float(config.get("value", 1.0))


def visible_devices(config: dict[str, Any]) -> dict[str, Any]:
    """Returns 1.0 and, as metadata, the worker's CUDA_VISIBLE_DEVICES and HPCNAS_WORKER."""
    return {"objective": 1.0, "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "worker": os.environ.get("HPCNAS_WORKER")}


def chatty(config: dict[str, Any]) -> float:
    """Prints to stdout and stderr, from Python and from a child process; fails when ``config["fail"]``."""
    import subprocess

    print(f"stdout of {config['tag']}")
    print(f"stderr of {config['tag']}", file=sys.stderr)
    subprocess.run(["echo", f"child of {config['tag']}"], check=True)
    if config.get("fail"):
        raise ValueError(f"failing {config['tag']}")
    return 1.0


#: modules an evaluation process must not load before its run function starts (unless it needs them)
HEAVY_MODULES = ("django", "balsam", "pandas", "sklearn", "numpy", "scipy", "ConfigSpace", "psycopg2", "zmq",
                 "matplotlib", "skopt")


def loaded_heavy_modules(config: dict[str, Any]) -> dict[str, Any]:
    """Objective 1.0; ``loaded``: the :data:`HEAVY_MODULES` already imported when it was called."""
    return {"objective": 1.0, "loaded": " ".join(m for m in HEAVY_MODULES if m in sys.modules) or "none"}


def mpi_group(config: dict[str, Any], comm: Any = None) -> dict[str, Any]:
    """For the mpi evaluator: objective = the size of the evaluation's communicator; ``members``:
    the COMM_WORLD ranks of its processes (JSON), ``api_size``: what ``evaluation_comm()`` says.
    Sleeps ``config["sleep"]`` seconds (default 0) after a barrier, sub-rank 0 ``config["lead_sleep"]``
    more; raises on sub-rank ``config["fail_on"]``; sub-rank 0 creates the file ``config["touch"]``;
    waits (30 s at most) for the file ``config["wait_for"]``."""
    import json

    from hpcnas.evaluator.mpi import evaluation_comm
    from mpi4py import MPI

    assert comm is not None, "the mpi evaluator passes comm="
    members = comm.allgather(MPI.COMM_WORLD.Get_rank())
    comm.Barrier()
    time.sleep(float(config.get("sleep", 0.0)) + (float(config.get("lead_sleep", 0.0)) if comm.Get_rank() == 0 else 0))
    if config.get("touch") and comm.Get_rank() == 0:
        open(config["touch"], "w").close()
    deadline = time.monotonic() + 30
    while config.get("wait_for") and not os.path.exists(config["wait_for"]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{config['wait_for']} did not appear within 30 s")
        time.sleep(0.01)
    if config.get("fail_on") is not None and comm.Get_rank() == int(config["fail_on"]):
        raise ValueError(f"failing on sub-rank {comm.Get_rank()}")
    return {"objective": float(comm.Get_size()), "members": json.dumps(members),
            "api_size": evaluation_comm().Get_size()}


def mpi_ranks(config: dict[str, Any]) -> dict[str, int]:
    """resources(config) for the mpi evaluator: ``config["k"]`` ranks."""
    return {"num_ranks": int(config["k"])}


def interrupt_in_group(config: dict[str, Any], comm: Any = None) -> float:
    """Raises KeyboardInterrupt (which run_config passes on) on sub-rank 1 of a multi-rank evaluation:
    that rank's own loop ends, as when a signal reaches one rank only."""
    if comm is not None and comm.Get_rank() == 1:
        raise KeyboardInterrupt
    time.sleep(0.2)
    return 1.0


def reports_twice(config: dict[str, Any]) -> dict[str, Any]:
    """Reports 0.5 then 0.7 (a stopping policy may stop it after the first), lasting 10 virtual s."""
    from hpcnas.multifidelity.reporting import report

    report(1, 0.5)
    report(2, 0.7)
    return {"objective": 1.0, "duration": 10.0}


def report_epochs(config: dict[str, Any]) -> float:
    """Reports ``x * epoch / 10`` for epochs 1..9 (a scheduler may stop it after any of them)."""
    from hpcnas.multifidelity.reporting import report

    value = 0.0
    for epoch in range(1, 10):
        value = config["x"] * epoch / 10
        report(epoch, value)
    return value
