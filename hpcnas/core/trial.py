"""A trial: one configuration evaluated once, from the run side's outcome to its results.csv row.

This module owns the facts every backend and reader shares, so that none of them translates them
on its own:

* :class:`Status` -- how an evaluation ended. Its values are the strings of results.csv and of the
  Balsam job data (``"DONE"``, ``"FAILED"``, ``"TIMEOUT"``, ``"STOPPED"``). :func:`decide` is the
  one mapping from what an evaluation showed (an error, a timeout, a stop by the multi-fidelity
  scheduler) to its status; the other one is Balsam's job-state table
  (:data:`hpcnas.balsam.jobs.STATE_STATUS`), for jobs that died before reporting.
* :class:`Outcome` -- what the run side (:func:`hpcnas.evaluator.runner.run_config`) found, and
  its only wire form, :meth:`Outcome.to_wire` / :meth:`Outcome.from_wire`: a JSON-safe dict
  ``{objective, status, error, start_time, end_time, metadata, reports}`` that local workers
  pickle, Ray tasks return, MPI ranks send and Balsam jobs store in their ``data`` and print after
  ``HPCNAS_RESULT``.
* :class:`EvalResult` -- a finished evaluation as the search master sees it,
  :meth:`EvalResult.from_outcome` from an outcome, and :func:`told_objective`, what the search
  learns from it.
* The results.csv schema: :data:`RESULT_COLUMNS` after the ``p:<name>`` columns, ``m:<key>``
  columns after them, :meth:`EvalResult.to_row` (one row written) and :func:`result_from_row`
  (one row read back; the ``p:`` cells are decoded by the reader, which knows the problem).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, Sequence

Config = dict[str, Any]


class Status(str, Enum):
    """How an evaluation ended; a ``str`` whose value is what results.csv and the Balsam DB hold."""

    DONE = "DONE"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    STOPPED = "STOPPED"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:  # printed results read as they did when statuses were plain strings
        return repr(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def read(cls, text: Any) -> Status | None:
        """The status written as ``text`` (``None``: not a status)."""
        try:
            return cls(text)
        except ValueError:
            return None


DONE, FAILED, TIMEOUT, STOPPED = Status.DONE, Status.FAILED, Status.TIMEOUT, Status.STOPPED
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
#: statuses whose objective the search learns (an early-stopped trial: its last report)
TOLD = (DONE, STOPPED)


class EvaluationTimeout(BaseException):
    """Raised in a run function whose time is up (the Balsam job runner's ``--timeout`` alarm):
    the evaluation ends as ``TIMEOUT``."""


def decide(error: str | None = None, *, timed_out: bool = False, stopped: bool = False,
           complete: bool = False) -> Status:
    """The status of an evaluation that showed this: ``timed_out`` (past its time limit), an
    ``error`` (an exception, a value that is not a number, a dead worker ...), ``stopped`` by the
    multi-fidelity scheduler (``complete``: at the scheduler's maximum resource, so done), or
    nothing of that (done)."""
    if timed_out:
        return Status.TIMEOUT
    if error is not None:
        return Status.FAILED
    if stopped and not complete:
        return Status.STOPPED
    return Status.DONE


# ----------------------------------------------------------------- the run side's outcome
def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _reports_out(reports: Sequence[Sequence[float]]) -> list[list[float | None]]:
    """``[[step, objective], ...]`` as JSON allows it: a report that is not finite as ``None``."""
    return [[float(s), float(y) if math.isfinite(y) else None] for s, y in reports]


def _reports_in(value: Any) -> list[tuple[float, float]]:
    if not isinstance(value, list):
        return []
    return [(float(s), math.nan if y is None else float(y)) for s, y in value]


@dataclass
class Outcome:
    """What evaluating one configuration gave, on the side that ran it. Times: epoch seconds."""

    objective: float | None
    status: str
    error: str | None
    start_time: float | None
    end_time: float | None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: intermediate ``(step, objective)`` reports (``hpcnas.report``), oldest first
    reports: list[tuple[float, float]] = field(default_factory=list)

    @classmethod
    def failure(cls, error: str, start_time: float | None, end_time: float | None, *,
                timed_out: bool = False, metadata: dict[str, Any] | None = None) -> Outcome:
        """An evaluation that gave no objective: ``error`` says why (``timed_out``: its time was up)."""
        return cls(None, decide(error, timed_out=timed_out), error, start_time, end_time, dict(metadata or {}))

    def to_wire(self) -> dict[str, Any]:
        """The outcome as it travels between processes and is stored in a Balsam job's ``data``."""
        return {
            "objective": self.objective,
            "status": str(self.status),
            "error": self.error,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "metadata": dict(self.metadata),
            "reports": _reports_out(self.reports),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Outcome:
        """Inverse of :meth:`to_wire`. Reports stored in ``metadata["reports"]`` (Balsam job data of
        earlier versions) are read as reports; an unknown status is ``FAILED``."""
        metadata = dict(data.get("metadata") or {})
        carried = metadata.pop("reports", None)
        reports = _reports_in(data.get("reports")) or _reports_in(carried)
        status = Status.read(data.get("status"))
        error = data.get("error")
        if status is None:
            error = error or f"the evaluation reported the status {data.get('status')!r}"
            status = decide(error)
        return cls(_number(data.get("objective")), status, error, _number(data.get("start_time")),
                   _number(data.get("end_time")), metadata, reports)


# ----------------------------------------------------------------- the master's result
#: Fixed columns of results.csv; hyper-parameters come first as ``p:<name>`` columns.
RESULT_COLUMNS = (
    "job_id",
    "objective",
    "status",
    "error",
    "submit_time",
    "start_time",
    "end_time",
    "duration",
    "worker",
    "reports",
    "log",
)
PARAM_PREFIX = "p:"
#: the run function's metadata (``{"objective": y, "metadata": {...}}`` or other keys of its dict)
#: are ``m:<key>`` columns after :data:`RESULT_COLUMNS`; its results carry them in ``metadata["m"]``
METADATA_PREFIX = "m:"
METADATA_KEY = "m"
#: columns a row must have to be read back, and the time columns (analytics needs them too)
REQUIRED_COLUMNS = ("job_id", "objective", "status")
TIME_COLUMNS = ("submit_time", "start_time", "end_time")
#: columns holding numbers (empty: none)
NUMBER_COLUMNS = ("objective", *TIME_COLUMNS, "duration")
#: the error text kept in results.csv (its tail, one line)
ERROR_CELL_LIMIT = 500


@dataclass
class EvalResult:
    """One finished evaluation. Times are UNIX epoch seconds (float)."""

    job_id: str
    config: Config
    objective: float | None
    status: str = DONE
    error: str | None = None
    submit_time: float | None = None
    start_time: float | None = None
    end_time: float | None = None
    worker: str | None = None
    #: intermediate ``(step, objective)`` reports (multi-fidelity), oldest first
    reports: list[tuple[float, float]] = field(default_factory=list)
    #: backend extras (host, num_nodes, ranks_per_node, ...), not written to results.csv
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the file holding the evaluation's stdout and stderr (local, ray: ``<output dir>/logs``;
    #: balsam: the job's ``.out`` file), when the evaluator kept one
    log: str | None = None

    @classmethod
    def from_outcome(cls, job_id: str, config: Config, outcome: Outcome, *, submit_time: float | None = None,
                     worker: str | None = None, metadata: Mapping[str, Any] | None = None,
                     log: str | None = None) -> EvalResult:
        """The result of evaluation ``job_id`` whose run side gave ``outcome``; ``metadata``: the
        backend's extras (the outcome's own win over them)."""
        return cls(
            job_id=job_id, config=config, objective=outcome.objective, status=outcome.status,
            error=outcome.error, submit_time=submit_time, start_time=outcome.start_time,
            end_time=outcome.end_time, worker=worker, reports=list(outcome.reports),
            metadata={**(metadata or {}), **outcome.metadata}, log=log,
        )

    @property
    def ok(self) -> bool:
        return self.status == DONE and self.objective is not None

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    def to_row(self) -> dict[str, Any]:
        """A results.csv row: ``p:<name>`` columns, then :data:`RESULT_COLUMNS`, then ``m:<key>``."""
        row: dict[str, Any] = {f"{PARAM_PREFIX}{k}": v for k, v in self.config.items()}
        row.update(
            job_id=self.job_id,
            objective=self.objective,
            status=str(self.status),
            error=(self.error or "")[-ERROR_CELL_LIMIT:].replace("\n", " | "),
            submit_time=self.submit_time,
            start_time=self.start_time,
            end_time=self.end_time,
            duration=self.duration,
            worker=self.worker,
            # multi-fidelity learning curve [[step, objective], ...] (JSON), so a resumed search
            # can rebuild its scheduler's rungs; empty without reports
            reports=[[s, y] for s, y in self.reports] or None,
            log=self.log,
        )
        user = self.metadata.get(METADATA_KEY)
        if isinstance(user, dict):
            row.update({f"{METADATA_PREFIX}{k}": v for k, v in user.items()})
        return row


def told_objective(result: EvalResult) -> float | None:
    """What the search learns from ``result``: the objective of a done or early-stopped evaluation,
    ``None`` for a failed one."""
    if result.status in TOLD and result.objective is not None:
        return result.objective
    return None


# ----------------------------------------------------------------- one row read back
class CellError(ValueError):
    """A cell whose text is not a value of its column; ``str()`` says what it holds."""


class RowError(ValueError):
    """A row's value that does not fit ``column`` (``None``: the configuration as a whole)."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column = column


def number_cell(text: str, empty: bool = True) -> float | None:
    """A number column's value (``None`` for an empty cell when ``empty``)."""
    if text == "" and empty:
        return None
    try:
        return float(text)
    except ValueError:
        raise CellError(f"holds {text!r}, not a number") from None


def reports_cell(text: str) -> list[tuple[float, float]]:
    """The ``reports`` cell: ``[[step, objective], ...]`` JSON, or empty."""
    if not text:
        return []
    try:
        return [(float(step), float(y)) for step, y in json.loads(text)]
    except (ValueError, TypeError):
        short = text if len(text) <= 40 else text[:37] + "..."
        raise CellError(f"holds {short!r}, not a list of [step, objective] pairs") from None


def _cell(column: str, parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except CellError as err:
        raise RowError(column, str(err)) from None


def result_from_row(row: Mapping[str, str], config: Config) -> EvalResult:
    """The result a results.csv row (its cells as text, by column) records; ``config``: its ``p:``
    cells decoded. A cell that does not fit its column is a :class:`RowError` naming it."""
    numbers = {}
    for col in NUMBER_COLUMNS:
        value = _cell(col, number_cell, row.get(col, ""))
        numbers[col] = value if value is not None and math.isfinite(value) else None
    text = row.get("status") or ""
    status = Status.read(text) if text else decide()  # files without statuses recorded successes
    if status is None:
        raise RowError("status", f"holds {text!r}, not one of {', '.join(STATUSES)}")
    if not row.get("job_id"):
        raise RowError("job_id", "is empty")
    reports = _cell("reports", reports_cell, row.get("reports", ""))
    return EvalResult(
        job_id=row["job_id"], config=config, objective=numbers["objective"], status=status,
        error=row.get("error") or None, submit_time=numbers["submit_time"],
        start_time=numbers["start_time"], end_time=numbers["end_time"],
        worker=row.get("worker") or None, reports=reports, log=row.get("log") or None,
    )


def result_columns(objectives: Sequence[str] = ()) -> list[str]:
    """:data:`RESULT_COLUMNS`, with the objective columns of several objectives after ``objective``."""
    columns = list(RESULT_COLUMNS)
    at = columns.index("objective") + 1
    return columns[:at] + list(objectives) + columns[at:]
