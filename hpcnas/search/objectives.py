"""Declared objectives (``--objectives N`` or ``--objectives NAME,NAME``): the run function's contract.

With ``k >= 2`` declared objectives a run function returns ``k`` numbers, all maximised: a
tuple or list (or NumPy array), or a dict whose ``"objective"`` is such a sequence (its other
keys are metadata, as for one objective). Anything else -- another count, ``NaN``, ``inf``, a
string, ``None`` -- fails *that evaluation*, with the reason in its ``error``; the search goes
on. (A string starting with ``"F"`` is a failure reported by the run function, as before.)

How the numbers travel: the evaluators take one number per evaluation, so the run function
is wrapped (:meth:`Objectives.wrap`) by :class:`ObjectivesRun`, which runs where the evaluation
runs (a worker process, a Balsam job, a Ray task), checks the returned value and hands back
``{"objective": first, OBJECTIVES_KEY: [all], ...}``. A dotted-path run function stays a dotted
path (``hpcnas.search.objectives.run_<k>_<hex of the path>``, resolved by this module's
``__getattr__``), so backends that import the run function by name (Balsam) run it too.
The master then takes the numbers out of the result (:meth:`Objectives.take`).

``results.csv`` gets the columns ``objective_0`` ... ``objective_<k-1>``; ``objective`` holds
``objective_0`` (so tools that read one objective read the first) and is empty exactly when
the evaluation failed, as for one objective. ``search.json`` records the names.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from hpcnas.core.errors import UsageError

#: the key of the wrapped run function's dict that carries every objective
OBJECTIVES_KEY = "__hpcnas_objectives__"
#: the ``EvalResult.metadata`` key the master fills with the tuple of objectives
RESULT_KEY = "objectives"
COLUMN = "objective_{}"
COLUMN_RE = re.compile(r"^objective_(\d+)$")
MAX_OBJECTIVES = 16
_PATH_RE = re.compile(r"^run_(\d+)_([0-9a-f]+)$")


def columns(k: int) -> list[str]:
    """The results.csv columns of ``k`` objectives."""
    return [COLUMN.format(i) for i in range(k)]


@dataclass(frozen=True)
class Objectives:
    """``k`` declared objectives and their names (``objective_0``, ... unless named)."""

    names: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def columns(self) -> list[str]:
        return columns(self.count)

    def wrap(self, run: str | Callable[..., Any]) -> str | Callable[..., Any]:
        """The run function that checks and carries the objectives (see the module docstring)."""
        if isinstance(run, str):
            return encode_path(run, self.count)
        path = _importable_path(run)
        return encode_path(path, self.count) if path else ObjectivesRun(run, self.count)

    def take(self, result: Any) -> None:
        """Move the objectives a finished ``result`` carries to ``result.metadata["objectives"]``
        (a tuple of floats); a successful result that carries none, or a bad row, fails."""
        from hpcnas.core.trial import DONE, METADATA_KEY, decide

        user = result.metadata.get(METADATA_KEY)
        if isinstance(user, dict):
            user.pop(OBJECTIVES_KEY, None)
        raw = result.metadata.pop(OBJECTIVES_KEY, None)
        if result.status != DONE or result.objective is None:
            result.metadata.pop(RESULT_KEY, None)
            return
        values = result.metadata.get(RESULT_KEY) if raw is None else raw
        if isinstance(values, str):  # metadata that went through JSON text
            import json

            try:
                values = json.loads(values)
            except ValueError:
                values = None
        problem = check_values(values, self.count) if values is not None else \
            "the evaluation reported no objectives (run function not wrapped for --objectives?)"
        if problem is None:
            result.metadata[RESULT_KEY] = tuple(float(v) for v in values)
            result.objective = result.metadata[RESULT_KEY][0]
        else:
            result.status, result.objective, result.error = decide(problem), None, problem
            result.metadata.pop(RESULT_KEY, None)


def declare(value: Any) -> Objectives | None:
    """The :class:`Objectives` of ``--objectives`` / ``objectives=``: a count, names separated by
    commas, or a sequence of names; ``None`` or ``1`` (one objective): ``None``."""
    if value is None:
        return None
    fix = "give a count (--objectives 2) or names separated by commas (--objectives accuracy,latency)"
    if isinstance(value, bool):
        raise UsageError(f"--objectives must be a count or names, got {value!r}: {fix}")
    if isinstance(value, int):
        count, names = value, None
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            count, names = int(text), None
        else:
            names = [n.strip() for n in text.split(",")]
            count = len(names)
    elif isinstance(value, (list, tuple)) and all(isinstance(n, str) for n in value):
        names, count = [n.strip() for n in value], len(value)
    else:
        raise UsageError(f"--objectives must be a count or names, got {value!r}: {fix}")
    if names is not None and (any(not n for n in names) or len(set(names)) != len(names)):
        raise UsageError(f"--objectives {value!r} has an empty or repeated name: {fix}")
    if not 1 <= count <= MAX_OBJECTIVES:
        raise UsageError(f"--objectives must be from 1 to {MAX_OBJECTIVES} objectives, got {count}: {fix}")
    if count == 1:
        return None
    return Objectives(tuple(names) if names else tuple(columns(count)))


def check_values(values: Any, k: int) -> str | None:
    """Why ``values`` are not ``k`` finite numbers (``None`` when they are)."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__") or not hasattr(values, "__iter__"):
        if isinstance(values, (int, float)) and not isinstance(values, bool):
            return (f"the run function returned one number ({values!r}) but {k} objectives are declared "
                    f"(--objectives): return a tuple of {k} numbers")
        return f"the run function returned {type(values).__name__} {values!r:.60}, not a tuple of {k} numbers"
    values = list(values)
    if len(values) != k:
        return (f"the run function returned {len(values)} objective(s) but {k} are declared "
                f"(--objectives {k}): return {k} numbers")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
            return f"objective {i} is {type(v).__name__} {v!r:.40}, not a number"
        try:
            number = float(v)
        except (TypeError, ValueError):
            return f"objective {i} is {v!r:.40}, not a number"
        if not math.isfinite(number):
            return f"objective {i} is {number}, not a finite number"
    return None


class ObjectivesRun:
    """A run function returning ``k`` objectives, wrapped so that one number reaches the evaluator
    and all of them the master (module docstring); runs where the evaluation runs."""

    def __init__(self, target: str | Callable[..., Any], k: int) -> None:
        self.target, self.k = target, k
        self._func: Callable[..., Any] | None = None if isinstance(target, str) else target
        # a callable that is not a dotted path: the balsam evaluator refuses it with its own message
        self.__qualname__ = f"<{k} objectives of {getattr(target, '__qualname__', target)!s}>"

    def function(self) -> Callable[..., Any]:
        if self._func is None:
            from hpcnas.evaluator.runner import resolve_run_function

            self._func = resolve_run_function(self.target)
        return self._func

    @property
    def resources(self) -> Any:  # the balsam evaluator's per-configuration resources
        return getattr(self.function(), "resources", None)

    def __call__(self, config: Any) -> Any:
        value = self.function()(config)
        extra: dict[str, Any] = {}
        if isinstance(value, dict):
            if "objective" not in value:
                return value  # the evaluator says what is missing
            extra = {k: v for k, v in value.items() if k != "objective"}
            value = value["objective"]
        if value is None or isinstance(value, str) and value.startswith("F"):
            return value  # a failure the run function reports (judged as for one objective)
        problem = check_values(value, self.k)
        if problem is not None:
            return f"F({problem})"
        numbers = [float(v) for v in value]
        return {**extra, "objective": numbers[0], OBJECTIVES_KEY: numbers}

    def __reduce__(self) -> tuple[Any, ...]:
        if isinstance(self.target, str):
            return (ObjectivesRun, (self.target, self.k))
        import cloudpickle  # a function of a script or notebook travels by value

        return (_rebuild, (cloudpickle.dumps(self.target), self.k))


def _rebuild(payload: bytes, k: int) -> ObjectivesRun:
    import pickle

    return ObjectivesRun(pickle.loads(payload), k)


def encode_path(path: str, k: int) -> str:
    """The dotted path of ``path`` wrapped for ``k`` objectives (module docstring)."""
    if _PATH_RE.match(path.rsplit(".", 1)[-1]) and path.startswith(__name__ + "."):
        return path  # wrapped already
    return f"{__name__}.run_{k}_{path.encode('utf-8').hex()}"


def decode_path(path: str) -> tuple[str, int] | None:
    """``(run function path, k)`` of a path made by :func:`encode_path`, else ``None``."""
    module, _, attr = path.rpartition(".")
    match = _PATH_RE.match(attr) if module == __name__ else None
    if match is None:
        return None
    return bytes.fromhex(match.group(2)).decode("utf-8"), int(match.group(1))


def __getattr__(name: str) -> Any:
    match = _PATH_RE.match(name)
    if match is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return ObjectivesRun(bytes.fromhex(match.group(2)).decode("utf-8"), int(match.group(1)))


def _importable_path(func: Any) -> str | None:
    """``module.name`` of a module-level function of an importable module, else ``None``."""
    import sys

    module = getattr(func, "__module__", None)
    name = getattr(func, "__qualname__", "")
    if not module or module == "__main__" or module.startswith("_hpcnas_user_") or "<" in name or "." in name:
        return None
    if getattr(sys.modules.get(module), name, None) is not func:
        return None
    return f"{module}.{name}"


def told(result: Any) -> Sequence[float] | None:
    """The objectives the search learns from a finished result (``None``: failed)."""
    from hpcnas.core.trial import told_objective

    return None if told_objective(result) is None else result.metadata.get(RESULT_KEY)
