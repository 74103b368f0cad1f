"""What a running search shows: a progress bar on a terminal, one log line per evaluation otherwise.

:class:`Progress` is fed by the search master with every batch of finished evaluations.

* ``bar``: a ``tqdm`` bar on stderr (the default when stderr is a terminal);
* ``lines``: one line on stdout per finished evaluation -- job id, status, objective (or the
  first line of its error), best objective so far and its job, rate, failures -- the default
  without a terminal (batch jobs, pipes, notebooks). Lines are rationed: a budget of
  :data:`BURST` lines, refilled at one line per ``interval`` seconds; evaluations finishing when
  the budget is spent are counted into one line once a line is due (``+N evaluations in S s``).
  A slow search shows every evaluation, a huge one a line every few seconds;
* ``off``: nothing (``--quiet``, ``--no-progress``).

``log_format="json"`` writes each line as one JSON object (``{"event": "evaluation", ...}`` or
``{"event": "progress", ...}`` for a line counting several), for machines, never a bar.
"""
from __future__ import annotations

import json
import math
import re
import sys
import time
from typing import Any, Callable, TextIO

from hpcnas.core.errors import UsageError
from hpcnas.evaluator.base import EvalResult

MODES = ("auto", "bar", "lines", "off")
LOG_FORMATS = ("text", "json")
#: seconds between two lines at most once evaluations finish faster than that
DEFAULT_INTERVAL = 5.0
#: lines that may come at once (then one per interval)
BURST = 10
ERROR_WIDTH = 160


def check_options(mode: str, log_format: str, interval: float) -> None:
    if mode not in MODES:
        raise UsageError(f"progress must be one of {', '.join(MODES)}, got {mode!r}")
    if log_format not in LOG_FORMATS:
        raise UsageError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    if not interval >= 0:  # nan too
        raise UsageError(f"--log-interval must be >= 0 seconds, got {interval}")


def first_line(error: str | None, width: int = ERROR_WIDTH) -> str:
    """The first non-empty line of an error text, without the traceback tail the runner appends
    (``Type: message (File ...)``), cut to ``width`` characters."""
    line = next((part.strip() for part in (error or "").replace(" | ", "\n").splitlines() if part.strip()), "")
    line = re.split(r' \(\s*(?:File "|Traceback)', line, maxsplit=1)[0]
    return line if len(line) <= width else line[: width - 3] + "..."


def rate_text(per_s: float | None) -> str:
    """``12.5 evals/s``, ``3 evals/min`` or ``0.5 evals/h``; ``-`` when unknown."""
    if per_s is None or not per_s > 0 or not math.isfinite(per_s):
        return "-"
    for unit, factor in (("s", 1.0), ("min", 60.0)):
        if per_s * factor >= 1.0:
            return f"{per_s * factor:.3g} evals/{unit}"
    return f"{per_s * 3600.0:.3g} evals/h"


class Progress:
    """Shows a search's progress (module docstring); ``update`` after each recorded batch."""

    def __init__(
        self,
        name: str,
        max_evals: int,
        initial: int = 0,
        mode: str = "auto",
        log_format: str = "text",
        interval: float = DEFAULT_INTERVAL,
        stream: TextIO | None = None,
        wall: Callable[[], float] = time.monotonic,
        burst: int = BURST,
    ) -> None:
        check_options(mode, log_format, interval)
        if mode == "auto":
            mode = "bar" if log_format == "text" and sys.stderr.isatty() else "lines"
        if mode == "bar" and log_format == "json":
            mode = "lines"
        self.mode = mode
        self.log_format = log_format
        self.interval = interval
        self.max_evals = max_evals
        self._stream = stream
        self._wall = wall
        self.burst = max(1, burst)
        self._tokens = float(self.burst)  # lines that may be written now (module docstring)
        self._refilled = wall()
        self._held: list[EvalResult] = []
        self._held_since: float | None = None
        self._bar: Any = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=max_evals, initial=min(initial, max_evals), desc=name, unit="eval",
                             file=sys.stderr)

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def update(self, results: list[EvalResult], state: dict[str, Any]) -> None:
        """Show ``results`` (just recorded); ``state``: finished, failed, best, best_job_id, rate."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.update(len(results))
            if state.get("best") is not None:
                self._bar.set_postfix(best=f"{state['best']:.6g}", failed=state["failed"], refresh=False)
            return
        finished = state["finished"] - len(results)
        for i, result in enumerate(results):
            if self._held or not self._take():
                if not self._held:
                    self._held_since = self._wall()
                self._held.extend(results[i:])
                break
            finished += 1
            self._write(self._event([result], 0.0, dict(state, finished=finished)))
        self.tick(state)

    def _refill(self) -> None:
        now = self._wall()
        if self.interval > 0:
            self._tokens = min(float(self.burst), self._tokens + (now - self._refilled) / self.interval)
        self._refilled = now

    def _take(self) -> bool:
        """Spend one line of the budget, if there is one (``interval`` 0: always)."""
        if self.interval <= 0:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def due_in(self) -> float | None:
        """Seconds until held evaluations are due to be shown (``None``: nothing held)."""
        if not self._held:
            return None
        if self.interval <= 0:
            return 0.0
        self._refill()
        return max(0.0, (1.0 - self._tokens) * self.interval)

    def tick(self, state: dict[str, Any], force: bool = False) -> None:
        """Write the held evaluations when their line is due (or ``force``)."""
        if not self._held or not (self._take() or force):
            return
        held, self._held = self._held, []
        now = self._wall()
        since = now - (self._held_since if self._held_since is not None else now)
        self._write(self._event(held, since, state))

    def close(self, state: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "lines":
            self.tick(state, force=True)

    # ----------------------------------------------------------------- lines
    def _event(self, held: list[EvalResult], since: float, state: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = {"event": "evaluation" if len(held) == 1 else "progress",
                                 "finished": state["finished"], "max_evals": self.max_evals}
        if len(held) == 1:
            r = held[0]
            event.update(job_id=r.job_id, status=r.status, objective=r.objective,
                         error=first_line(r.error) if r.error else None, log=getattr(r, "log", None))
        else:
            event.update(new=len(held), new_failed=sum(1 for r in held if r.objective is None),
                         seconds=round(since, 3))
        event.update(best=state.get("best"), best_job_id=state.get("best_job_id"), failed=state["failed"],
                     rate_per_s=state.get("rate_per_s"), elapsed_s=state.get("elapsed_s"))
        return event

    def _write(self, event: dict[str, Any]) -> None:
        if self.log_format == "json":
            line = json.dumps(event, default=str, allow_nan=False)
        else:
            line = _text(event)
        try:
            print(line, file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed or full stdout must not stop the search
            pass


def _text(e: dict[str, Any]) -> str:
    width = len(str(e["max_evals"]))
    head = f"hpcnas: [{e['finished']:>{width}}/{e['max_evals']}]"
    if e["event"] == "evaluation":
        if e["objective"] is not None:
            what = f"job {e['job_id']} {e['status']} objective {e['objective']:.6g}"
        else:
            what = f"job {e['job_id']} {e['status']}: {e['error'] or 'no objective'}"
    else:
        failed = f", {e['new_failed']} failed" if e["new_failed"] else ""
        what = f"+{e['new']} evaluations in {e['seconds']:.1f} s{failed}"
    best = f"best {e['best']:.6g} (job {e['best_job_id']})" if e.get("best") is not None else "no success yet"
    return f"{head} {what} | {best} | {rate_text(e.get('rate_per_s'))} | {e['failed']} failed"
