"""Problems and run functions for the Balsam end-to-end tests (importable by the test user).

``Problem``: ``x`` in [-10, 10] with the starting point ``x = CRASH_X``; ``sleep_or_crash``
sleeps ``SLEEP`` seconds (so packed evaluations overlap) and kills its own process with
SIGKILL for ``x == CRASH_X`` -- a real crash: no report, Balsam records ``RUN_ERROR``.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Any

CRASH_X = 7.25
SLEEP = float(os.environ.get("HPCNAS_TEST_SLEEP", "1.0"))
#: categorical values that a shell or Balsam's command-line handling would mangle
NASTY_TEXTS = ['"; rm -rf ~; echo "', "a  b ~ $HOME `id` 'q' \\n", "plain"]


def __getattr__(name: str) -> Any:
    """``Problem`` / ``TextProblem`` are built on first use, so evaluations skip ConfigSpace."""
    from hpcnas.problem import HpProblem

    if name == "Problem":
        problem = HpProblem()
        problem.add_hyperparameter((-10.0, 10.0), "x")
        problem.add_starting_point(x=CRASH_X)
    elif name == "TextProblem":
        problem = HpProblem()
        problem.add_hyperparameter(list(NASTY_TEXTS), "text")
        problem.add_hyperparameter((0.0, 1.0), "y")
        problem.add_starting_point(text=NASTY_TEXTS[0], y=0.5)
    else:
        raise AttributeError(name)
    globals()[name] = problem
    return problem


def sleep_or_crash(config: dict[str, Any]) -> float:
    x = float(config["x"])
    if abs(x - CRASH_X) < 1e-9:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(SLEEP)
    return -((x - 1.0) ** 2)


def text_length(config: dict[str, Any]) -> dict[str, Any]:
    """Objective = length of ``text``; echoes the text back as metadata."""
    return {"objective": float(len(config["text"])), "text": config["text"]}


def mpi_text(config: dict[str, Any]) -> dict[str, Any]:
    """Needs exactly 2 MPI ranks; echoes ``text`` and the world size back as metadata."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if comm.size != 2:
        raise RuntimeError(f"expected 2 MPI ranks, got {comm.size}")
    ranks = comm.allreduce(1)
    return {"objective": float(len(config["text"])) + float(config["y"]), "text": config["text"], "size": ranks}


def resources(config: dict[str, Any]) -> dict[str, int]:
    """Per-configuration resources: big ``x`` gets 2 nodes of 4 ranks, small ``x`` the defaults."""
    return {"num_nodes": 2, "ranks_per_node": 4} if float(config["x"]) > 5 else {}


def learning_curve(config: dict[str, Any]) -> float:
    """Multi-fidelity: reports ``-(x-1)^2 * (1 + 3/epoch)`` for 9 epochs (``hpcnas.report``)."""
    from hpcnas import report

    value = 0.0
    for epoch in range(1, 10):
        time.sleep(0.1)
        value = -((float(config["x"]) - 1.0) ** 2) * (1 + 3 / epoch)
        report(epoch, value)
    return value


def host_sleep(config: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``HPCNAS_TEST_SLEEP`` seconds; reports the host it ran on and when (placement)."""
    import socket

    start = time.time()
    time.sleep(SLEEP)
    return {"objective": -((float(config["x"]) - 1.0) ** 2), "host": socket.gethostname(),
            "start": start, "end": time.time()}


def mpi_hosts(config: dict[str, Any]) -> dict[str, Any]:
    """Every MPI rank's host name (``hosts``, in rank order) and the world size; sleeps like
    :func:`host_sleep` so that evaluations overlap."""
    import socket

    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    start = time.time()
    hosts = comm.allgather(socket.gethostname())
    time.sleep(SLEEP)
    comm.barrier()
    return {"objective": -((float(config["x"]) - 1.0) ** 2), "hosts": ",".join(hosts), "size": comm.size,
            "start": start, "end": time.time()}


def parent_or_crash(config: dict[str, Any]) -> dict[str, Any]:
    """:func:`sleep_or_crash` that also names the process that started it (metadata ``parent``:
    the parent's command line, the fork server's under ``python -m hpcnas.balsam.launch``)."""
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
        parent = fh.read().replace(b"\0", b" ").decode().strip()
    return {"objective": sleep_or_crash(config), "parent": parent}
