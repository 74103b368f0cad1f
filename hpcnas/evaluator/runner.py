"""Run one configuration in the current process and judge what the run function returned.

Every backend ends up here, in whatever process it gives the evaluation (a local worker
process, a Balsam job, a Ray task): :func:`run_config` imports the run function, calls it
on the configuration and turns the outcome into an :class:`Outcome`. Exceptions (including
``SystemExit``) and return values that are not finite numbers become ``FAILED`` outcomes
with the error text; isolation from crashes that kill the process (segfault, ``os._exit``)
and timeouts are the backend's job.

A run function returns a number (maximised), or a dict with an ``"objective"`` key
(other keys, and the items of a ``"metadata"`` dict, are kept: ``m:<key>`` columns of results.csv).
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from hpcnas.core.loading import load_attribute
from hpcnas.core.trial import METADATA_KEY, EvaluationTimeout, Outcome, decide

__all__ = ["Job", "Outcome", "judge", "resolve_run_function", "run_config", "user_metadata"]

RunFunction = Callable[[dict[str, Any]], Any]


_importing = threading.local()


@contextmanager
def _importing_run_function() -> Iterator[None]:
    depth = getattr(_importing, "depth", 0)
    _importing.depth = depth + 1
    try:
        yield
    finally:
        _importing.depth = depth


def importing_run_function() -> bool:
    """Whether this thread is importing a run function's module or script right now.

    A search started then is the module's own top-level code (a script without an
    ``if __name__ == "__main__":`` guard, imported again by a worker): the search master refuses
    it, so a worker never runs a second search (:class:`~hpcnas.search.master.SearchMaster`)."""
    return getattr(_importing, "depth", 0) > 0


def resolve_run_function(run_function: str | RunFunction) -> RunFunction:
    """Import a dotted-path run function (or pass a callable through) and check it is callable."""
    if isinstance(run_function, str):
        with _importing_run_function():
            func = load_attribute(run_function, "run function")
    else:
        func = run_function
    if not callable(func):
        from hpcnas.core.errors import HpcnasError

        raise HpcnasError(f"run function '{run_function}' is not callable: define def run(config): ...")
    _check_signature(func, run_function)
    return func


def _check_signature(func: Any, run_function: Any) -> None:
    """A run function must accept exactly one positional argument (the configuration)."""
    import inspect

    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins and C callables: nothing to check
        return
    try:
        signature.bind({})
    except TypeError:
        from hpcnas.core.errors import HpcnasError

        name = run_function if isinstance(run_function, str) else getattr(func, "__qualname__", repr(func))
        raise HpcnasError(
            f"run function '{name}' has the signature {signature}: it must accept one positional "
            "argument, the configuration: define def run(config): ..."
        ) from None


def user_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """The ``m:`` columns of a returned dict: its ``"metadata"`` dict (DeepHyper 0.13) and its other
    keys, as numbers or text (anything else as its JSON / ``repr`` text)."""
    import json

    items = {k: v for k, v in value.items() if k not in ("objective", "metadata")}
    nested = value.get("metadata")
    if isinstance(nested, dict):
        items.update(nested)
    elif nested is not None:
        items["metadata"] = nested
    out: dict[str, Any] = {}
    for key, item in items.items():
        if item is None or isinstance(item, (bool, int, float, str)):
            out[str(key)] = item
        else:
            try:
                out[str(key)] = json.dumps(item, default=repr)
            except (TypeError, ValueError):
                out[str(key)] = repr(item)
    return out


class Job(dict):
    """The configuration handed to a run function: a ``dict``, which also answers DeepHyper 0.13's
    ``run(job)`` idioms ``job.parameters`` and ``job["x"]``."""

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self)


def judge(value: Any) -> tuple[float | None, str | None, dict[str, Any]]:
    """Turn a run function's return value into ``(objective, error, metadata)``.

    A string starting with ``"F"`` (DeepHyper's ``"F_reason"``) is a failure with that reason."""
    metadata: dict[str, Any] = {}
    if isinstance(value, dict):
        metadata = {k: v for k, v in value.items() if k != "objective"}
        metadata[METADATA_KEY] = user_metadata(value)
        if "objective" not in value:
            return None, "run function returned a dict without an 'objective' key", metadata
        value = value["objective"]
    if isinstance(value, str) and value.startswith("F"):
        return None, f"run function reported a failure: {value[:200]}", metadata
    if value is None:
        return None, "run function returned None; it must return a number to maximise", metadata
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        return None, f"run function returned {type(value).__name__} {value!r:.80}, not a number", metadata
    try:
        objective = float(value)
    except (TypeError, ValueError) as err:
        return None, f"run function returned {value!r:.80}, not a number ({err})", metadata
    if not math.isfinite(objective):
        return None, f"run function returned a non-finite objective ({objective})", metadata
    return objective, None, metadata


def run_config(run_function: str | RunFunction, config: dict[str, Any], log_path: str | None = None,
               env: Mapping[str, str] | None = None, trial_id: str | None = None) -> Outcome:
    """Evaluate ``config`` in this process; never raises for faults of the run function.

    The evaluation gets a multi-fidelity report channel (:mod:`hpcnas.multifidelity.reporting`):
    ``Outcome.reports`` holds its ``report(step, objective)`` calls, and an evaluation stopped by
    the scheduler has status ``STOPPED`` with its last reported objective.

    ``log_path``: the evaluation's stdout and stderr (file descriptors 1 and 2, so the output of C
    code and of child processes too, and the full traceback of an exception) are appended to
    that file while it runs (:func:`output_to`).

    ``env``: the search's evaluation environment (the multi-fidelity scheduler's address), over
    this process's environment. ``trial_id``: the evaluation's job id, which names its reports at
    the scheduler (the same id from submit to the results row).
    """
    from hpcnas.multifidelity.reporting import open_channel

    with open_channel(config, None if env is None else {**os.environ, **env}, trial_id) as channel, output_to(log_path) as logging_to:
        outcome = _run_config(run_function, config, traceback_to_stderr=logging_to)
    return channel.finish(outcome)


def _flush_all() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    try:  # C stdio buffers (printf in an extension module)
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextmanager
def output_to(path: str | None) -> Iterator[bool]:
    """Send file descriptors 1 and 2 to ``path`` (appended) until the block ends; yields whether
    they go there (``False``: no ``path``, or a file that cannot be opened here -- a Ray node
    that does not see the output directory -- and the output goes where it went before)."""
    if path is None:
        yield False
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        yield False
        return
    _flush_all()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        yield True
    finally:
        _flush_all()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


#: a log file larger than this keeps its first and last halves (:func:`trim_log`)
DEFAULT_LOG_LIMIT = 64 * 2**20


def trim_log(path: str | None, limit: int = DEFAULT_LOG_LIMIT) -> None:
    """Cut the log file ``path`` to its first and last ``limit / 2`` bytes, with a line saying how
    much was left out between them, when it is larger than ``limit`` (``0``: no limit).

    Copies in chunks (the memory used stays small) to a temporary file replacing ``path``."""
    if not path or limit <= 0:
        return
    try:
        size = os.path.getsize(path)
        if size <= limit:
            return
        half = limit // 2
        tmp = f"{path}.trim"
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            _copy(src, dst, half)
            dst.write(f"\n[hpcnas: {size - 2 * half} bytes of output left out here]\n".encode())
            src.seek(size - half)
            _copy(src, dst, half)
        os.replace(tmp, path)
    except OSError:
        pass


def file_tail(path: str | None, limit: int) -> str:
    """The last ``limit`` bytes of the file ``path`` as text ('' when there is none)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _copy(src: Any, dst: Any, length: int) -> None:
    while length > 0:
        chunk = src.read(min(length, 1 << 20))
        if not chunk:
            return
        dst.write(chunk)
        length -= len(chunk)


def _run_config(run_function: str | RunFunction, config: dict[str, Any], traceback_to_stderr: bool = False) -> Outcome:
    start = time.time()
    try:
        func = resolve_run_function(run_function)
        value = func(Job(config))
    except BaseException as err:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from user code too
        if isinstance(err, KeyboardInterrupt):
            raise
        if traceback_to_stderr:  # the whole traceback, in the evaluation's own output file
            frames = err.__traceback__.tb_next if err.__traceback__ is not None else None  # from the run function on
            traceback.print_exception(type(err), err, frames or err.__traceback__, file=sys.stderr)
        tail = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-3:])
        return Outcome.failure(f"{type(err).__name__}: {err} ({tail.strip()[-400:]})", start, time.time(),
                               timed_out=isinstance(err, EvaluationTimeout))
    objective, error, metadata = judge(value)
    return Outcome(objective, decide(error), error, start, time.time(), metadata)
