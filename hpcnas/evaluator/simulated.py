"""The ``simulated`` evaluator: a discrete-event simulation of ``num_workers`` workers.

The run function runs *in this process* and returns the objective together with the
duration the evaluation *would* take, e.g. ``{"objective": y, "duration": 42.0}`` (or give a
``duration_function(config) -> seconds``, or a ``default_duration``). Nothing sleeps: the
evaluator keeps a virtual clock and a slot per worker. A job starts when a slot frees (at the
virtual time it frees), ends ``duration`` virtual seconds later, and ``gather(timeout)``
advances the clock to the next end (``timeout=None``), by at most ``timeout`` virtual seconds,
or not at all (``timeout=0``). ``eval_timeout`` cuts a longer job to a ``TIMEOUT`` at
``start + eval_timeout``.

The master's own time is charged to the clock: the search master reports the time it spends
asking, telling and writing results (:meth:`Evaluator.charge`), and the virtual clock advances
by it (``master_time="cpu"``, the default: CPU time of the master's thread, which a loaded
machine does not inflate; ``"wall"``: elapsed time; ``"off"``: nothing, the clock jumps from
end to end), multiplied by ``master_time_scale`` (e.g. 2 for a head node twice as slow as this
machine). Slots that free while the master computes stay idle until its next submit, so the
utilization of a simulated run is a true figure for that master: a search that needs 20 ms per
ask cannot keep more than ``duration / 20 ms`` workers busy. ``master_seconds`` is the total
charged (the master's busy time on the virtual clock).

Results carry virtual epoch times (``origin`` + virtual seconds), so searches, the master's
stopping rules (which read :meth:`clock`) and analytics run unchanged, thousands of
evaluations per second: for search tests and scale studies (cf. Syne Tune's simulator
backend). Not process-isolated: a run function that crashes the interpreter crashes this one.
"""
from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import deque
from typing import Any, Callable

from hpcnas.core.errors import UsageError
from hpcnas.core.loading import load_attribute
from hpcnas.core.trial import DONE, Outcome, decide
from hpcnas.evaluator.base import Config, EvalResult, Evaluator, register_evaluator
from hpcnas.evaluator.runner import resolve_run_function, run_config

#: what :meth:`SimulatedEvaluator.charge` counts of the master's time
MASTER_TIMES = ("cpu", "wall", "off")


@register_evaluator("simulated")
class SimulatedEvaluator(Evaluator):
    """Discrete-event simulation of a worker pool on a virtual clock (see module docstring)."""

    def __init__(
        self,
        run_function: str | Callable[..., Any],
        num_workers: int | None = None,
        eval_timeout: float | None = None,
        duration_function: str | Callable[[Config], float] | None = None,
        default_duration: float | None = None,
        origin: float | None = None,
        master_time: str = "cpu",
        master_time_scale: float = 1.0,
    ) -> None:
        super().__init__(run_function, num_workers=num_workers, eval_timeout=eval_timeout)
        if master_time not in MASTER_TIMES:
            raise UsageError(f"--master-time must be one of {', '.join(MASTER_TIMES)}, got {master_time!r}")
        if not (isinstance(master_time_scale, (int, float)) and math.isfinite(master_time_scale)
                and master_time_scale >= 0):
            raise UsageError(f"--master-time-scale must be a finite number >= 0, got {master_time_scale}")
        self.master_time, self.master_time_scale = master_time, float(master_time_scale)
        #: virtual seconds charged for the master's own work (ask, tell, writes) so far
        self.master_seconds = 0.0
        if default_duration is not None and not (math.isfinite(default_duration) and default_duration >= 0):
            raise UsageError(f"--default-duration must be >= 0 seconds, got {default_duration}")
        self._run = resolve_run_function(run_function)
        self._duration_function: Callable[[Config], float] | None = (
            load_attribute(duration_function, "duration function") if isinstance(duration_function, str)
            else duration_function
        )
        self._default_duration = default_duration
        self._origin = time.time() if origin is None else float(origin)
        self._now = 0.0  # virtual seconds since origin
        self._queue: deque[tuple[str, Config, float]] = deque()
        self._free_slots = list(range(self.num_workers))
        heapq.heapify(self._free_slots)
        self._running: list[tuple[float, int, int, EvalResult]] = []  # (end, seq, slot, result)
        self._seq = itertools.count()

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument(
            "--duration-function",
            metavar="PATH",
            help="dotted path of duration(config) -> virtual seconds (simulated evaluator)",
        )
        parser.add_argument(
            "--default-duration",
            type=float,
            metavar="SECONDS",
            help="virtual duration when the run function returns no 'duration' (simulated evaluator)",
        )
        parser.add_argument(
            "--master-time",
            choices=MASTER_TIMES,
            help="the master's own time charged to the virtual clock: its thread's CPU time (default), "
                 "wall time, or off (simulated evaluator)",
        )
        parser.add_argument(
            "--master-time-scale",
            type=float,
            metavar="FACTOR",
            help="multiply the charged master time, e.g. 2 for a head node twice as slow as this "
                 "machine (simulated evaluator; default: 1)",
        )

    def clock(self) -> float:
        """The virtual time, in epoch seconds."""
        return self._origin + self._now

    def charge(self, cpu_seconds: float, wall_seconds: float) -> None:
        """The master computed for this long: the virtual clock advances by it (see the module docstring)."""
        if self.master_time == "off":
            return
        seconds = self.master_time_scale * max(0.0, cpu_seconds if self.master_time == "cpu" else wall_seconds)
        self._now += seconds
        self.master_seconds += seconds

    # ----------------------------------------------------------------- backend
    def _submit(self, jobs: list[tuple[str, Config]], submit_time: float) -> None:
        self._queue.extend((job_id, config, self.clock()) for job_id, config in jobs)
        self._start_queued()

    def _gather(self, timeout: float | None) -> list[EvalResult]:
        self._start_queued()
        if not self._running:
            return []
        next_end = self._running[0][0]
        if timeout is None:
            self._now = max(self._now, next_end)
        elif next_end <= self._now + timeout:
            self._now = max(self._now, next_end)
        else:
            self._now += timeout
            return []
        done: list[EvalResult] = []
        while self._running and self._running[0][0] <= self._now:
            _, _, slot, result = heapq.heappop(self._running)
            heapq.heappush(self._free_slots, slot)
            done.append(result)
        self._start_queued()
        return done

    def _close(self) -> None:
        self._queue.clear()
        self._running.clear()

    # ----------------------------------------------------------------- internals
    def _start_queued(self) -> None:
        while self._queue and self._free_slots:
            job_id, config, submit_time = self._queue.popleft()
            slot = heapq.heappop(self._free_slots)
            result = self._simulate(job_id, config, submit_time, slot)
            end = (result.end_time or 0.0) - self._origin
            heapq.heappush(self._running, (end, next(self._seq), slot, result))

    def _simulate(self, job_id: str, config: Config, submit_time: float, slot: int) -> EvalResult:
        outcome = run_config(self._run, config, env=self.evaluation_env, trial_id=job_id)
        duration, problem = self._duration(config, outcome.metadata)
        if problem:
            duration = 0.0
            if outcome.status == DONE:  # a failed run keeps its own error
                _fail(outcome, problem)
        if self.eval_timeout is not None and duration > self.eval_timeout:
            _fail(outcome, f"simulated duration {duration:g} s exceeds --eval-timeout {self.eval_timeout:g} s",
                  timed_out=True)
            duration = self.eval_timeout
        start = self.clock()
        outcome.start_time, outcome.end_time = start, start + duration
        return EvalResult.from_outcome(job_id, config, outcome, submit_time=submit_time, worker=f"sim-{slot}",
                                       metadata={"simulated_duration": duration})

    def _duration(self, config: Config, metadata: dict[str, Any]) -> tuple[float, str | None]:
        if "duration" in metadata:
            value: Any = metadata.pop("duration")
        elif self._duration_function is not None:
            try:
                value = self._duration_function(dict(config))
            except Exception as err:  # noqa: BLE001 - user code
                return 0.0, f"duration function raised {type(err).__name__}: {err}"
        elif self._default_duration is not None:
            value = self._default_duration
        else:
            return 0.0, (
                "simulated evaluation has no duration: return {'objective': y, 'duration': seconds}, "
                "or give a duration function or default duration"
            )
        try:
            duration = float(value)
        except (TypeError, ValueError):
            return 0.0, f"simulated duration {value!r:.60} is not a number"
        if not math.isfinite(duration) or duration < 0:
            return 0.0, f"simulated duration {duration} must be a finite number >= 0"
        return duration, None


def _fail(outcome: Outcome, error: str, timed_out: bool = False) -> None:
    """``outcome`` gave no objective after all: ``error`` says why (its reports are kept)."""
    outcome.objective, outcome.error, outcome.status = None, error, decide(error, timed_out=timed_out)
