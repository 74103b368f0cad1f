"""SIGINT (Ctrl-C) and SIGTERM (a batch scheduler's end of allocation) in hpcnas processes.

Python turns SIGINT into a ``KeyboardInterrupt`` raised wherever the main thread happens to
be. During start-up that is inside ``import`` statements, where libraries catch it or turn it
into an ``ImportError`` (a traceback, exit code 1, or an interrupt that is simply lost), and
during a search it may be in the middle of writing a row of ``results.csv``. So a command-line
run of hpcnas has three phases, each with its own answer to both signals:

1. **start-up** (imports, option parsing, loading the problem, building the search and the
   evaluator; :func:`cli_process`, :func:`setup_phase`): nothing is recorded yet, so the
   process ends at once with one line (``hpcnas: interrupted``, exit code 130, or
   ``hpcnas: terminated``, 143);
2. **search** (:func:`raising`): the signal raises ``KeyboardInterrupt`` (SIGINT) or
   :class:`Terminated` (SIGTERM), so ``finally`` blocks stop the workers and close
   ``results.csv``; code that records results runs under :func:`deferred`, and a signal that
   arrives there is raised when it has finished, so no finished evaluation is half-written;
3. **exit** (:func:`finish`): as in start-up; and threads that a problem or run function
   started without ``daemon=True`` do not keep the process alive after the command ended.

Outside a command-line process (a library call of ``hpcnas.cli.main.main([...])``, tests)
phases 1 and 3 change nothing; phase 2 installs its handlers for the duration of the search
(main thread only) and restores the previous ones. A signal that was ignored when the process
started (``SIG_IGN``, e.g. ``nohup`` or a background job) stays ignored.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # type checkers take this as True; at run time typing (~30 ms) stays unimported
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

try:  # the C module under ``signal``: importing ``signal`` (enum, collections) takes ~20 ms
    import _signal as _sig
except ImportError:  # pragma: no cover - not CPython
    import signal as _sig

SIGINT, SIGTERM = int(_sig.SIGINT), int(_sig.SIGTERM)
SIGNALS = (SIGINT, SIGTERM)
#: exit code and one-line message of each signal
OUTCOME = {SIGINT: (130, "hpcnas: interrupted"), SIGTERM: (143, "hpcnas: terminated")}
#: seconds ``finish`` waits for leftover non-daemon threads before it exits without them
#: (``HPCNAS_THREAD_GRACE_S`` overrides it)
THREAD_GRACE_S = 2.0


class Terminated(KeyboardInterrupt):
    """Raised for SIGTERM during a search, so cleanup runs as for Ctrl-C (exit code 143)."""


class _State:
    cli = False  # this process is an hpcnas command (cli_process was called)
    mode: str | None = None  # "exit" | "raise" | None (our handler not installed)
    depth = 0  # nesting of ``deferred`` sections
    pending: int | None = None  # a signal that arrived in a deferred section
    reported = False  # the command already printed its one line about a signal
    received: int | None = None  # the first signal that reached the search phase
    saved: dict[int, Any] = {}  # handlers before cli_process


def _handler(signum: int, frame: object) -> None:
    if _State.mode == "raise":
        _State.received = _State.received or signum
        if _State.depth:
            _State.pending = _State.pending or signum
            return
        raise exception_for(signum)
    exit_now(signum)


def exception_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == SIGTERM else KeyboardInterrupt()


def exit_now(signum: int) -> None:
    """End the process at once: flush what was printed, one line on stderr, the signal's exit code."""
    code, line = OUTCOME.get(signum, (128 + signum, "hpcnas: interrupted"))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a stream closed or busy in the interrupted frame
            pass
    if not _State.reported:
        try:
            os.write(2, (line + "\n").encode())
        except OSError:
            pass
    os._exit(code)


def report(code: int) -> None:
    """The command printed its line for an interrupt: a later signal exits without another one."""
    if code in (130, 143):
        _State.reported = True


def _install(mode: str) -> dict[int, Any] | None:
    """Point both signals at :func:`_handler` in ``mode``; the previous handlers (key 0: the
    previous mode), or None when this is not the main thread (only it can handle signals)."""
    previous: dict[int, Any] = {}
    try:
        for signum in SIGNALS:
            current = _sig.getsignal(signum)
            previous[signum] = current
            if current != _sig.SIG_IGN:
                _sig.signal(signum, _handler)
    except ValueError:  # not the main thread
        for signum, handler in previous.items():
            if handler is not None and _sig.getsignal(signum) is _handler:
                _sig.signal(signum, handler)
        return None
    previous[0], _State.mode = _State.mode, mode
    return previous


def _restore(previous: dict[int, Any] | None) -> None:
    if previous is None:
        return
    for signum in SIGNALS:
        handler = previous.get(signum)
        if handler is not None and _sig.getsignal(signum) is _handler and handler is not _handler:
            _sig.signal(signum, handler)
    _State.mode = previous.get(0)


def cli_process() -> None:
    """Mark this process as an hpcnas command and enter the start-up phase; call it first."""
    if _State.cli:
        return
    saved = _install("exit")
    if saved is not None:
        _State.cli = True
        _State.saved = saved


def release() -> None:
    """Give a command Python's usual behaviour (``KeyboardInterrupt``, SIGTERM's default)."""
    if _State.cli:
        _restore({**_State.saved, 0: None})


class _Phase:
    """A context manager that installs ``mode`` for its block and restores what was there."""

    mode = "raise"

    def __enter__(self) -> "_Phase":
        self._previous = self._install()
        return self

    def _install(self) -> dict[int, Any] | None:
        return _install(self.mode)

    def __exit__(self, *exc: object) -> None:
        _restore(self._previous)


class setup_phase(_Phase):  # noqa: N801 - used like a function
    """Start-up phase for the duration of the block, in a command-line process (else nothing)."""

    mode = "exit"

    def _install(self) -> dict[int, Any] | None:
        return _install(self.mode) if _State.cli else None


class raising(_Phase):  # noqa: N801
    """Search phase: the signals raise ``KeyboardInterrupt`` / :class:`Terminated` in the block."""


class deferred:  # noqa: N801
    """A block a signal must not cut short (recording results): the signal waits for its end.

    ``with deferred(): ...`` or, on a function, ``@deferred()``."""

    def __enter__(self) -> "deferred":
        _State.depth += 1
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        _State.depth -= 1
        if _State.depth == 0 and _State.pending is not None:
            signum, _State.pending = _State.pending, None
            if exc_type is None:  # an error already on its way out wins
                raise exception_for(signum)

    def __call__(self, func: F) -> F:
        import functools

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with deferred():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def finish(code: int) -> int:
    """End of a command-line run: exit phase, then exit even if non-daemon threads still run.

    Returns ``code`` when the process can end normally; otherwise waits up to
    :data:`THREAD_GRACE_S` for the leftover threads, says which ones it leaves behind (one
    line), runs the ``atexit`` handlers and ends the process with ``code``. After a signal
    reached the search the process always ends with that signal's code (130 / 143), even when
    code on the way caught the ``KeyboardInterrupt`` and the command returned 0.
    """
    if not _State.cli:
        return code
    _install("exit")
    if _State.received is not None:
        # a signal stopped the search: its exit code, whatever code on the way swallowed the
        # KeyboardInterrupt, and without the interpreter's own exit (which kills the process
        # with SIGINT when it saw a KeyboardInterrupt pass through C code: -2, not 130)
        if code == 0:
            code, line = OUTCOME.get(_State.received, (128 + _State.received, "hpcnas: interrupted"))
            if not _State.reported:
                print(line, file=sys.stderr)
                _State.reported = True
        return _exit_process(code)
    import threading
    import time

    def leftovers() -> list[threading.Thread]:
        return [t for t in threading.enumerate()
                if t is not threading.main_thread() and not t.daemon and t.is_alive()]

    from hpcnas.core import environment
    from hpcnas.core.errors import UsageError

    try:
        grace = environment.number("HPCNAS_THREAD_GRACE_S")
    except UsageError:  # the process is ending: a bad value keeps the default
        grace = None
    grace = THREAD_GRACE_S if grace is None else grace
    deadline = time.monotonic() + grace
    for thread in leftovers():
        thread.join(max(0.0, deadline - time.monotonic()))
    left = leftovers()
    if not left:
        return code
    names = ", ".join(t.name for t in left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
    message = (f"hpcnas: warning: exiting although {len(left)} thread(s) still run ({names}): the problem or "
               "run function started them without daemon=True")
    print(message, file=sys.stderr)
    return _exit_process(code)


def _exit_process(code: int) -> NoReturn:
    """Run the ``atexit`` handlers, flush the streams and end the process with ``code``."""
    import atexit

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is not None:
        run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


__all__ = [
    "Terminated", "cli_process", "deferred", "exception_for", "exit_now", "finish", "raising", "release",
    "report", "setup_phase",
]
