"""Pure helpers shared by the Balsam evaluator and the job runner (no Django, no DB).

* Configurations travel in a job's ``args`` as ``b64:<base64url of JSON>``: Balsam splits a
  job's command line on whitespace, expands ``~`` and then ``shlex``-splits it, so raw JSON
  (spaces, quotes, ``;``, ``~``) would not arrive intact. Base64url has none of those.
* The runner reports ``{"objective", "status", "error", "start_time", "end_time", "metadata"}``
  under :data:`RESULT_KEY` in the job's ``data`` and prints ``<MARKER><json>`` to stdout (the
  job's ``.out`` file) as a fallback when the DB write fails.
* Balsam states map to hpcnas statuses with one dict, :data:`STATE_STATUS`; :func:`job_outcome`
  reads a finished job (its report, else its state) as an :class:`~hpcnas.core.trial.Outcome`.
* A job's ``cpu_affinity`` follows its threads per rank (:func:`cpu_affinity_for`).
"""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from typing import Any

from hpcnas.core.errors import HpcnasError
from hpcnas.core.trial import DONE, FAILED, TOLD, Outcome, Status, decide

#: key of the runner's report in ``BalsamJob.data``
RESULT_KEY = "hpcnas_result"
#: key of the evaluation's identity (config, job id, search) in ``BalsamJob.data``
EVAL_KEY = "hpcnas_eval"
#: stdout line prefix of the runner's report
MARKER = "HPCNAS_RESULT "
#: exit code of the runner when the evaluation failed (not in Balsam's retry codes 1/255/-11)
EXIT_FAILED = 3

def cpu_affinity_for(threads_per_rank: int) -> str:
    """``BalsamJob.cpu_affinity`` for a job of ``threads_per_rank`` threads per rank.

    Balsam's Theta command (``aprun``) passes ``-d T -j 1`` only with ``-cc depth``; with
    ``none`` (Balsam's default) the threads of a rank are silently not reserved. ALCF: "When
    using aprun and the -d argument, you should always use -cc depth". One thread keeps
    Balsam's default.
    """
    return "depth" if int(threads_per_rank) > 1 else "none"


#: Balsam state -> hpcnas status for evaluations that are over (absent: still pending)
STATE_STATUS = {
    "RUN_DONE": DONE,
    "POSTPROCESSED": DONE,
    "JOB_FINISHED": DONE,
    "RUN_ERROR": FAILED,
    "FAILED": FAILED,
    "USER_KILLED": FAILED,
}
#: states of an evaluation that will still run (or is running)
PENDING_STATES = (
    "CREATED", "AWAITING_PARENTS", "READY", "STAGED_IN", "PREPROCESSED", "RUNNING",
    "RUN_TIMEOUT", "RESTART_READY",
)

_STATE_LINE = re.compile(r"^\[(\d+-\d+-\d{4}\s+\d+:\d+:\d+\.\d+)\s+(\w+)\s*\]\s?(.*)$")
_TIME_FMT = "%m-%d-%Y %H:%M:%S.%f"


def encode_config(config: dict[str, Any]) -> str:
    """``b64:`` + base64url(JSON) without padding: safe through Balsam's command-line handling."""
    raw = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "b64:" + base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_config(token: str) -> dict[str, Any]:
    """Inverse of :func:`encode_config`; plain JSON objects are accepted too."""
    try:
        if token.startswith("b64:"):
            body = token[4:]
            text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
        else:
            text = token
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise HpcnasError(f"the configuration argument is neither b64:<base64url JSON> nor JSON: {err}") from err
    if not isinstance(value, dict):
        raise HpcnasError("the configuration argument must encode a JSON object")
    return value


def parse_state_history(history: str) -> list[tuple[float, str, str]]:
    """``[(epoch seconds, state, message), ...]`` from Balsam's text ``state_history`` (UTC)."""
    out: list[tuple[float, str, str]] = []
    current: list[Any] | None = None
    for line in (history or "").splitlines():
        match = _STATE_LINE.match(line.strip())
        if match:
            stamp = datetime.strptime(match.group(1), _TIME_FMT).replace(tzinfo=timezone.utc)
            current = [stamp.timestamp(), match.group(2), match.group(3)]
            out.append(current)  # type: ignore[arg-type]
        elif current is not None and line.strip():
            current[2] += "\n" + line  # multi-line messages (error tails)
    return [tuple(x) for x in out]  # type: ignore[misc]


def run_times(history: str) -> tuple[float | None, float | None, str]:
    """(start, end, last error message) of the latest run in a ``state_history``.

    Start is the last ``RUNNING``; end the first ``RUN_DONE``/``RUN_ERROR``/``RUN_TIMEOUT``
    after it (or a final ``FAILED``/``USER_KILLED``).
    """
    events = parse_state_history(history)
    start = end = None
    message = ""
    for t, state, msg in events:
        if state == "RUNNING":
            start, end = t, None
        elif state in ("RUN_DONE", "RUN_ERROR", "RUN_TIMEOUT") and end is None and start is not None:
            end = t
        if state in ("RUN_ERROR", "RUN_TIMEOUT", "FAILED", "USER_KILLED") and msg.strip():
            message = msg.strip()
    if end is None and events and events[-1][1] in ("FAILED", "USER_KILLED") and start is not None:
        end = events[-1][0]
    return start, end, message


def find_marker(text: str) -> dict[str, Any] | None:
    """The last runner report printed in a job's output, or None."""
    for line in reversed(text.splitlines()):
        if line.startswith(MARKER):
            try:
                value = json.loads(line[len(MARKER):])
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def outcome_status(report: dict[str, Any] | None, state: str) -> Status:
    """Final hpcnas status from the runner's report (if any) and the Balsam state."""
    status = Status.read((report or {}).get("status"))
    if status is not None:
        return status
    return STATE_STATUS.get(state, FAILED)


def job_outcome(report: dict[str, Any] | None, state: str, history: str) -> Outcome:
    """The outcome of a job over in ``state``: the runner's ``report`` (its wire form,
    :meth:`~hpcnas.core.trial.Outcome.to_wire`; ``None`` when the job died before reporting), the
    times and the error tail of its ``state_history``."""
    start, end, message = run_times(history)
    wire = Outcome.from_wire(report or {})
    status = outcome_status(report, state)
    error = None
    if status not in TOLD:
        error = (report or {}).get("error") or message or f"Balsam job ended in state {state}"
        error = f"[balsam {state}] {error}"[-2000:]
    objective = wire.objective if status in TOLD else None
    if status == DONE and objective is None:
        error = f"[balsam {state}] the job finished without reporting an objective"
        status = decide(error)
    return Outcome(objective, status, error, start if start is not None else wire.start_time,
                   end if end is not None else wire.end_time, wire.metadata, wire.reports)


def env_string(env: dict[str, str]) -> str:
    """Balsam's ``environ_vars`` text (``A=1:B=2``); rejects values it cannot carry."""
    for key, value in env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise HpcnasError(f"environment variable name {key!r} is not valid")
        if ":" in str(value) or "\n" in str(value):
            raise HpcnasError(
                f"environment variable {key}={value!r}: Balsam 0.x separates variables with ':' "
                "so a value cannot contain ':' (set it in the app's envscript instead)"
            )
    return ":".join(f"{k}={v}" for k, v in env.items())
