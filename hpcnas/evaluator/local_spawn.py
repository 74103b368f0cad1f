"""How the local evaluator starts its worker processes (forks of a pre-imported zygote) and reads their output.

A fresh interpreter that imports the worker's modules and the run function's costs 0.1-0.3 s of
CPU, and a master with 64 slots on a 2-core machine starts 64 of them at once: the last slot
began its first evaluation about 5 s after the first one (``benchmarks/local_overhead.py
--slots 64``). So each worker process is a fork of one zygote per evaluator, the fork server of
the Balsam serial worker (:mod:`hpcnas.balsam.zygote`, which imports the worker's module and
NumPy once): a few milliseconds per worker. A forked worker is still a process of its own, in
a session of its own, with the environment the slot gives it (``HPCNAS_WORKER``,
``CUDA_VISIBLE_DEVICES``) and its message connection as descriptor 3; it then receives the
master's ``sys.path``, working directory and run function as a fresh worker does.

It dies with the master as before: the zygote leaves when the master's end of its socket closes
(even after ``kill -9``), and a worker dies with the zygote (its parent-death signal). The zygote
has a session of its own, as the workers do, so a signal to the master's process group (Ctrl-C,
a batch system's ``SIGTERM``) reaches the master alone, which stops its workers itself. Should the
zygote die while the master lives, its workers die with it: their evaluations fail with the
exit code lost, and later workers start as fresh interpreters (one line on stderr says so).

``HPCNAS_FORK_SERVER=0`` (the knob the Balsam path reads too) starts every worker as a fresh
interpreter, as do a master whose ``PYTHON*``/``LD_*`` variables a slot's environment changes.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

#: a worker started as a fresh interpreter
PLAIN_CODE = "import sys; from hpcnas.evaluator.local_worker import worker_main; worker_main(int(sys.argv[1]))"


class WorkerSpawner:
    """Starts one evaluator's worker processes; its zygote starts with the first of them."""

    def __init__(self) -> None:
        from hpcnas.balsam import forkserver
        from hpcnas.balsam.zygote import KEEP_FD

        self._forkserver = forkserver
        self._keep_fd = KEEP_FD  # the worker's connection in a forked worker
        self._use_zygote = forkserver.enabled()
        self._server: Any = None

    def start(self, env: dict[str, str], conn_fd: int, out_fd: int) -> Any:
        """A worker process (``Popen`` or a ``Popen``-like handle) serving the connection
        ``conn_fd``, its output on ``out_fd``."""
        server = self._zygote()
        startup = self._forkserver.startup_env
        if server is not None and startup(env) == startup(server.env):
            try:
                return server.spawn([sys.executable, "-m", "hpcnas.evaluator.local_worker", str(self._keep_fd)],
                                    os.getcwd(), env, out_fd, keep_fd=conn_fd, session=True)
            except self._forkserver.ForkServerGone:
                self._use_zygote = False  # said in one line by ForkServer.gone
        return subprocess.Popen(
            [sys.executable, "-c", PLAIN_CODE, str(conn_fd)],
            pass_fds=(conn_fd,),
            stdin=subprocess.DEVNULL,
            stdout=out_fd,
            stderr=out_fd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )

    def _zygote(self) -> Any:
        """The zygote, started on first use; None when off, when it cannot start or once it died."""
        if self._server is not None and not self._server.alive:
            self._use_zygote = False  # it died: fresh interpreters from now on
        if not self._use_zygote:
            return None
        if self._server is None:
            try:
                self._server = self._forkserver.ForkServer(
                    sys.executable, dict(os.environ, PYTHONUNBUFFERED="1"), subreaper=False, session=True)
            except OSError as err:
                self._use_zygote = False
                print(f"hpcnas: warning: no fork server for the local workers ({err}); they start as "
                      "fresh interpreters", file=sys.stderr, flush=True)
        return self._server if self._use_zygote else None

    def close(self) -> None:
        """Stop the zygote (after the workers: they die with it)."""
        if self._server is not None:
            self._server.close()
            self._server = None


class OutputTail:
    """Drains a worker's output pipe in a thread, keeping only the last ``limit`` bytes."""

    def __init__(self, fd: int, limit: int) -> None:
        self._fd = fd
        self._limit = limit
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, name=f"hpcnas-output-{fd}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while True:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    break
                with self._lock:
                    self._buf += chunk[-self._limit :]
                    if len(self._buf) > self._limit:
                        del self._buf[: len(self._buf) - self._limit]
        except OSError:
            pass
        finally:
            os.close(self._fd)

    def reset(self) -> None:
        with self._lock:
            self._buf.clear()

    def text(self, settle: float = 0.0) -> str:
        if settle:
            self._thread.join(settle)
        with self._lock:
            return self._buf.decode("utf-8", "replace")
