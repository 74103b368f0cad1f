"""``python -m hpcnas.balsam.zygote FD``: the fork server of the serial worker (its "zygote").

A process that imported the job runner's modules (:data:`PRELOAD`) once and then forks one child
per evaluation job, so that each evaluation is still a process of its own but skips the
interpreter's start-up and those imports (about 0.2-0.8 s of CPU per evaluation, more under load).
:mod:`hpcnas.balsam.forkserver` (the worker's side) starts it and talks to it over ``FD``, one
end of a ``SOCK_SEQPACKET`` Unix socket pair; one JSON message per packet:

* worker -> zygote ``{"op": "spawn", "id": N, "argv": [python, "-m", MODULE, ...], "cwd": DIR,
  "env": {...}, "affinity": [cpu, ...]}`` with the job's output file descriptor attached
  (``SCM_RIGHTS``); the zygote answers ``{"id": N, "pid": PID}`` (or ``{"id": N, "error": TEXT}``)
  and later ``{"id": N, "exit": CODE}`` -- ``CODE`` as :attr:`subprocess.Popen.returncode`
  (``-SIGNAL`` for a child killed by a signal);
* worker -> zygote ``{"op": "signal", "id": N, "sig": SIG}``: sent to the child while the zygote
  has not reaped it (no other process can have its pid then).

A spawn may attach a second descriptor, which the child keeps as descriptor :data:`KEEP_FD`
(3), and ask for ``"session": true`` (the child calls ``setsid``, so it leads a process group of
its own): how the local evaluator's worker processes start (:mod:`hpcnas.evaluator.local_spawn`,
their message connection).

The zygote peeks at an exited child (``waitid`` with ``WNOWAIT``), sends its exit code and only
then reaps it: should the zygote die between the two, the child is still a zombie, handed to the
worker (a child subreaper), which reads the code itself. A child starts the job only once the
zygote has sent its pid (a ``go`` byte on a pipe), so a zygote that dies in between leaves no
evaluation the worker does not know of.

The child: stdout and stderr on the job's file, stdin ``/dev/null``, every other descriptor
closed (the worker's ZeroMQ sockets never reach the zygote; the zygote's own socket is closed),
the job's working directory, environment (replaced as a whole, exactly the job's), CPU affinity,
``sys.argv`` and process title (the job's command line, with ``setproctitle``); ``sys.path[0]`` is the job's directory (as ``python -m`` started there), the
``random`` module and NumPy's global generator are seeded afresh. It then runs ``MODULE`` as
``__main__`` (as ``python -m`` does) and leaves the zygote's code for good: the interpreter's
normal exit (``atexit`` handlers, flushing, exit status from ``SystemExit`` or an uncaught
exception) is the child's.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
from typing import Any

#: modules the zygote imports once: what the job runner needs before ``run(config)``, and NumPy
#: (nearly every run function's; safe to fork: no thread of its own survives in the child, its
#: BLAS re-initialises after ``fork``). ``HPCNAS_FORK_PRELOAD=mod1,mod2`` adds modules (a run
#: function's own module, say); only modules that start no thread and open no device or
#: connection at import belong there (not TensorFlow or PyTorch with CUDA).
PRELOAD = ("hpcnas.balsam.job_runner", "hpcnas.evaluator.runner", "hpcnas.evaluator.local_worker", "hpcnas.balsam.jobs",
           "hpcnas.balsam.server_info", "hpcnas.multifidelity.reporting", "psycopg2", "argparse",
           "importlib.util", "random", "shutil", "locale", "numpy", "numpy.random")
PRELOAD_KNOB = "HPCNAS_FORK_PRELOAD"
#: largest message (a job's environment is a few kB)
MAX_MESSAGE = 1 << 20
#: the descriptor number a child keeps the spawn's second attached descriptor as
KEEP_FD = 3
PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on: bool = True) -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where it cannot."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def preload() -> None:
    import importlib

    from hpcnas.core.environment import text

    extra = [name.strip() for name in (text(PRELOAD_KNOB) or "").split(",") if name.strip()]
    for name in (*PRELOAD, *extra):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the child imports it again and fails as a fresh process would
            pass
    import gc

    gc.collect()
    gc.freeze()  # the children's collections skip what the zygote built (fewer copy-on-write pages)


def exit_code(info: Any) -> int:
    """``Popen.returncode`` of a ``waitid`` result."""
    if info.si_code == os.CLD_EXITED:
        return int(info.si_status)
    return -int(info.si_status)


class Zygote:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.children: dict[int, int] = {}  # pid -> job id, until reaped
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def send(self, msg: dict[str, Any]) -> None:
        self.sock.send(json.dumps(msg).encode())

    def serve(self) -> dict[str, Any] | None:
        """Answer the worker until it closes the socket (returns None), or, in a forked child,
        return the job to run."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when jobs stop
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(self.wake_w)
        while True:
            ready, _, _ = select.select([self.sock.fileno(), self.wake_r], [], [], 5.0)
            if self.wake_r in ready:
                while True:
                    try:
                        if not os.read(self.wake_r, 512):
                            break
                    except BlockingIOError:
                        break
            self.reap()
            if self.sock.fileno() not in ready:
                continue
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 4)
            except OSError:
                data, fds = b"", []
            if not data:
                return None
            msg = json.loads(data)
            if msg.get("op") == "spawn":
                job = self.spawn(msg, fds)
                if job is not None:
                    return job
            elif msg.get("op") == "signal":
                self.signal(int(msg["id"]), int(msg["sig"]))
            for fd in fds if msg.get("op") != "spawn" else ():
                os.close(fd)

    def reap(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            job_id = self.children.pop(info.si_pid, None)
            if job_id is not None:
                try:
                    self.send({"id": job_id, "exit": exit_code(info)})
                except OSError:
                    pass  # the worker is gone; the zombie goes to it (or init) when we exit
            os.waitpid(info.si_pid, 0)

    def signal(self, job_id: int, sig: int) -> None:
        for pid, known in self.children.items():
            if known == job_id:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
                return

    def spawn(self, msg: dict[str, Any], fds: list[int]) -> dict[str, Any] | None:
        if len(fds) not in (1, 2):
            for fd in fds:
                os.close(fd)
            self.send({"id": msg["id"], "error": "spawn without an output descriptor (and at most one more)"})
            return None
        go_r, go_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            return self.become_child(msg, fds[0], go_r, fds[1] if len(fds) == 2 else None)
        os.close(go_r)
        for fd in fds:
            os.close(fd)
        self.children[pid] = int(msg["id"])
        try:
            self.send({"id": msg["id"], "pid": pid})
            os.write(go_w, b"1")
        except OSError:
            pass  # the worker is gone: no go byte, the child leaves without running
        finally:
            os.close(go_w)
        return None

    def become_child(self, msg: dict[str, Any], out_fd: int, go_r: int, keep_fd: int | None = None) -> dict[str, Any]:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if msg.get("session"):
            os.setsid()
        self.sock.detach()  # its descriptor is closed below with the others
        go = os.read(go_r, 1)
        if go != b"1":
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        if keep_fd is not None and keep_fd != KEEP_FD:
            os.dup2(keep_fd, KEEP_FD)
        first = KEEP_FD if keep_fd is None else KEEP_FD + 1
        os.closerange(first, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)
        return msg


def run_job(job: dict[str, Any]) -> None:
    """In the forked child: the job's directory, environment, affinity and argv; run its module."""
    import builtins
    import importlib.util
    import random
    import types

    set_title(list(job["argv"]))  # before the environment changes: setproctitle reads it
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    if job.get("affinity"):
        try:
            os.sched_setaffinity(0, job["affinity"])
        except (OSError, AttributeError):
            pass
    if sys.path and sys.path[0] == ZYGOTE_PATH0:
        sys.path[0] = os.getcwd()
    random.seed()
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()
    argv = list(job["argv"])
    module = argv[2]
    # what ``python -m MODULE`` does (runpy.run_module would warn: the zygote imported MODULE)
    spec = importlib.util.find_spec(module)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{argv[0]}: No module named {module}")
    code = spec.loader.get_code(module)  # type: ignore[attr-defined]
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=spec.origin, __spec__=spec, __loader__=spec.loader, __package__=spec.parent,
                         __cached__=spec.cached, __builtins__=builtins)
    sys.modules["__main__"] = main
    sys.argv = [spec.origin or module, *argv[3:]]
    exec(code, main.__dict__)


def set_title(argv: list[str]) -> None:
    """Show the job's command line in ``ps`` and ``/proc/PID/cmdline`` (tools and tests find
    evaluations by it), not the zygote's: ``setproctitle`` where installed."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(" ".join(argv))


def init_title() -> None:
    """Let ``setproctitle`` find the argument area now, while ``environ`` is the zygote's."""
    try:
        from setproctitle import getproctitle
    except ImportError:
        return
    getproctitle()


#: ``sys.path[0]`` of the zygote (its start directory, as ``python -m`` sets it)
ZYGOTE_PATH0 = sys.path[0] if sys.path else ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    set_subreaper()  # orphans of an evaluation's own children are reaped here
    init_title()
    preload()
    job = Zygote(sock).serve()
    if job is None:
        return 0
    run_job(job)  # the child: SystemExit / an exception from here is its exit status
    return 0


if __name__ == "__main__":
    sys.exit(main())
