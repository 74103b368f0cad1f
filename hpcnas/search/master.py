"""The search master loop: ties an ask/tell search to an evaluator, persists and resumes.

:class:`SearchMaster` keeps every worker busy (it asks for exactly ``evaluator.num_free``
configurations whenever slots free up), tells the search each batch of finished results
as it arrives, and appends them to ``results.csv`` in ``output_dir`` (flushed and
``fsync``-ed per batch, or at most every ``sync_interval`` seconds, see
:mod:`hpcnas.search.results_store`). It stops after
``max_evals`` finished evaluations or ``timeout`` seconds on the evaluator's clock
(virtual for the simulated evaluator, which also charges the master's own ask, tell and write
time to its clock: :meth:`~hpcnas.evaluator.base.Evaluator.charge`), and never submits more than ``max_evals``
evaluations in total, counting recorded, recovered and pending ones.

Resume: when ``output_dir`` already holds ``results.csv`` of the same problem, the recorded
evaluations are told to the search (not run again) and count towards ``max_evals``; then
``evaluator.recover()`` adds what the backend finished meanwhile (deduplicated by job id) and
adopts what it still runs. ``search.json`` guards against mixing problems.

Several objectives (``objectives``, :mod:`hpcnas.search.objectives`): the search is told the
row of objectives of each result (the master takes it out of the result first, failing the
results that carry a bad one), and results.csv gets a column per objective.

One master per output directory: :meth:`SearchMaster.run` holds ``search.lock``
(:mod:`hpcnas.search.output_lock`) while it runs, and everything that could stop it -- an
output directory it cannot write, a results.csv edited by hand -- is refused before the first
evaluation (:meth:`~hpcnas.search.results_store.ResultsStore.check_compatible`).

The master does not own the evaluator: the caller closes it (``with evaluator: ...``). It hands the
search's evaluation environment (:meth:`~hpcnas.search.base.Search.evaluation_env`) to the evaluator
and closes the search when its run ends.
"""
from __future__ import annotations

import json
import logging
import os
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import pandas as pd

from hpcnas.core import interrupts
from hpcnas.core.errors import UsageError
from hpcnas.core.limits import time_limit
from hpcnas.core.trial import STOPPED, EvalResult, told_objective
from hpcnas.evaluator.base import Evaluator
from hpcnas.search import output_dir as output_dirs
from hpcnas.search.base import Search
from hpcnas.search.objectives import RESULT_KEY, Objectives
from hpcnas.search.objectives import told as told_objectives
from hpcnas.search.output_lock import OutputLock
from hpcnas.search.progress import DEFAULT_INTERVAL, Progress, check_options, first_line
from hpcnas.search.results_store import ResultsStore

log = logging.getLogger(__name__)

#: stop when more than this share of the evaluations finished in this run failed ...
DEFAULT_MAX_FAILURE_RATIO = 0.5
#: ... once at least this many (and at least ``num_workers``) have finished
MIN_EVALS_FOR_RATIO = 10
#: sub-directory of the output directory holding each evaluation's output (local, ray)
LOGS_DIR = "logs"


class SearchMaster:
    """Run ``search`` against ``evaluator`` until ``max_evals`` results or ``timeout`` seconds."""

    def __init__(
        self,
        problem: Any,
        search: Search,
        evaluator: Evaluator,
        output_dir: str,
        max_evals: int,
        timeout: float | None = None,
        progress: bool | str = True,
        metadata: dict[str, Any] | None = None,
        sync_interval: float = 0.0,
        log_format: str = "text",
        log_interval: float = DEFAULT_INTERVAL,
        max_failure_ratio: float | None = DEFAULT_MAX_FAILURE_RATIO,
        keep_logs: bool = True,
        warm_start: Sequence[tuple[dict[str, Any], float | None]] = (),
        objectives: Objectives | None = None,
        peers: Any = None,
    ) -> None:
        from hpcnas.evaluator.runner import importing_run_function

        if importing_run_function():
            raise UsageError(
                "a search was started while its run function was being imported (the script or module "
                "of the run function starts a search at import time, so every worker would run it "
                "again): put the search under if __name__ == '__main__': or move the run function "
                "to a module of its own"
            )
        if not isinstance(max_evals, int) or isinstance(max_evals, bool) or max_evals < 1:
            raise UsageError(f"--max-evals must be a positive integer, got {max_evals!r}")
        timeout = time_limit(timeout, "--timeout")  # None: no limit (also for inf)
        self.problem = problem
        self.search = search
        self.evaluator = evaluator
        evaluator.use_evaluation_env(search.evaluation_env())  # e.g. the multi-fidelity scheduler's address
        if not sync_interval >= 0:  # nan too
            raise UsageError(f"--sync-interval must be >= 0 seconds, got {sync_interval}")
        self.objectives = objectives
        if objectives is not None:
            search.use_objectives(objectives.count)
            if warm_start:
                raise UsageError("--warm-start tells one objective per evaluation: it cannot start a search "
                                 "with --objectives; leave one of them out")
        self.store = ResultsStore(output_dir, problem, sync_interval=sync_interval,
                                  objectives=objectives.columns if objectives is not None else ())
        self.store.check_compatible()  # fail before anything starts
        self.output_dir = self.store.output_dir
        self.lock = OutputLock(self.output_dir)
        self.max_evals = max_evals
        self.timeout = timeout
        self.progress = "auto" if progress is True else "off" if progress is False else str(progress)
        check_options(self.progress, log_format, log_interval)
        self.log_format = log_format
        self.log_interval = log_interval
        if max_failure_ratio is not None and not 0 <= max_failure_ratio <= 1:
            raise UsageError(f"--max-failure-ratio must be between 0 and 1, got {max_failure_ratio}")
        self.max_failure_ratio = max_failure_ratio
        self.keep_logs = keep_logs
        self.metadata = dict(metadata or {})
        self.num_finished = 0
        self.num_resumed = 0
        self.num_failed = 0
        self.num_stopped = 0  # stopped early by a multi-fidelity policy (not failures)
        self.best: EvalResult | None = None
        self.first_errors: list[EvalResult] = []  # the first failed evaluations (3 at most)
        self.run_finished = 0  # finished in this run (not resumed or recovered)
        self.run_failed = 0
        self.stopped_by: str | None = None
        self._known: set[str] = set()
        self._seen: set[str] = set()  # configurations already evaluated (JSON keys)
        self._resumed_keys: set[str] = set()  # ... of them, those recorded before this run
        self._warned_repeat = False
        self._objective_rows: list[tuple[float, ...]] = []  # several objectives: the successes' rows
        #: (config, objective) pairs of another search, told before anything runs (--warm-start)
        self.warm_start = list(warm_start)
        #: the other agents' results (:class:`hpcnas.search.agents.PeerResults`), told as they appear
        self.peers = peers
        self.num_from_peers = 0

    @property
    def results_path(self) -> str:
        return self.store.path

    @property
    def logs_dir(self) -> str | None:
        """Where each evaluation's output goes (``None``: the evaluator keeps none)."""
        if self.keep_logs and getattr(self.evaluator, "keeps_logs", False):
            return os.path.join(self.output_dir, LOGS_DIR)
        return None

    def run(self) -> pd.DataFrame:
        """Run the search; return every result recorded in ``results.csv`` as a DataFrame."""
        output_dirs.make(self.output_dir)
        if self.logs_dir is not None:
            output_dirs.make(self.logs_dir)
            self.evaluator.log_dir = self.logs_dir
        try:
            self.lock.acquire()  # one master per output directory, until this one ends
            self.store.check_and_write_metadata(
                {
                    "search": getattr(self.search, "name", type(self.search).__name__),
                    "evaluator": getattr(self.evaluator, "name", type(self.evaluator).__name__),
                    "num_workers": self.evaluator.num_workers,
                    "max_evals": self.max_evals,
                    "timeout": self.timeout,
                    **({"objectives": list(self.objectives.names)} if self.objectives is not None else {}),
                    **self.metadata,
                }
            )
            try:
                self._resume()
                self._loop()
            finally:
                self.store.close()
        finally:
            self.lock.release()
            self.search.close()  # its evaluations are over: a multi-fidelity search stops its server
        return self.dataframe()

    def dataframe(self) -> pd.DataFrame:
        try:
            return pd.read_csv(self.store.path)
        except (FileNotFoundError, pd.errors.EmptyDataError):
            return pd.DataFrame()
        except (pd.errors.ParserError, UnicodeDecodeError) as err:  # edited while the search ran
            log.warning("%s has lines pandas cannot read (%s): they are left out of the returned table",
                        self.store.path, str(err).strip().splitlines()[0] if str(err) else type(err).__name__)
            return pd.read_csv(self.store.path, on_bad_lines="skip", encoding_errors="replace")

    # ----------------------------------------------------------------- steps
    def _resume(self) -> None:
        if self.warm_start:  # told, never evaluated again nor written to this results.csv
            self.search.tell(self.warm_start)
            self._seen.update(_key(c) for c, _ in self.warm_start)
            log.info("warm start: told the search %d earlier evaluation(s)", len(self.warm_start))
        previous = self.store.load()
        self.store.check_writable()  # before anything is evaluated or recovered
        if previous:
            log.info("resuming from %s: %d evaluations recorded", self.store.path, len(previous))
            self._record(previous, write=False, restore=True)
            self.num_resumed = len(previous)
            self._resumed_keys = set(self._seen)
        recovered = self.evaluator.recover()
        if recovered:
            self._record(recovered, write=True, restore=True)
        self._tell_peers(force=True)

    def _loop(self) -> None:
        evaluator = self.evaluator
        start = evaluator.clock()
        realtime = type(evaluator).clock is Evaluator.clock
        background = getattr(self.search, "fit_in_background", None)
        if realtime and callable(background):  # refits must not stall asks while workers wait
            background(True)
        progress = Progress(getattr(self.search, "name", "search"), self.max_evals, initial=self.num_finished,
                            mode=self.progress, log_format=self.log_format, interval=self.log_interval)
        try:
            while self.num_finished < self.max_evals:
                remaining = None
                if self.timeout is not None:
                    remaining = self.timeout - (evaluator.clock() - start)
                    if remaining <= 0:
                        self.stopped_by = "timeout"
                        break
                self._tell_peers()
                budget = self.max_evals - self.num_finished - evaluator.num_pending
                n = min(evaluator.num_free, budget)
                if n > 0:
                    with _charged(evaluator):
                        configs = self.search.ask(n)
                        if configs:
                            self._check_repeats(configs)
                    if configs:
                        evaluator.submit(configs)
                        if self.peers is not None:
                            self.peers.claim(configs)
                if evaluator.num_pending == 0:
                    self.stopped_by = "exhausted"
                    log.warning("the search proposed no configuration and nothing is running: stopping")
                    break
                # held progress lines are written on time (on a real clock; a virtual one writes them
                # with the next results)
                due = progress.due_in() if realtime else None
                wait = remaining if due is None else due if remaining is None else min(due, remaining)
                gathered = evaluator.gather(timeout=wait)
                with _charged(evaluator):
                    fresh = self._record(gathered, write=True)
                    self.run_finished += len(fresh)
                    self.run_failed += sum(1 for r in fresh if told_objective(r) is None)
                    progress.update(fresh, self._state(start))
                if self._too_many_failures():
                    self.stopped_by = "failures"
                    break
            else:
                self.stopped_by = "max_evals"
        finally:
            progress.close(self._state(start))

    def _state(self, start: float) -> dict[str, Any]:
        elapsed = self.evaluator.clock() - start
        return {
            "finished": self.num_finished, "failed": self.num_failed,
            "best": self.best.objective if self.best is not None else None,
            "best_job_id": self.best.job_id if self.best is not None else None,
            "rate_per_s": self.run_finished / elapsed if elapsed > 0 and self.run_finished else None,
            "elapsed_s": round(elapsed, 3),
        }

    def _too_many_failures(self) -> bool:
        """Whether failures stop the search (not when it has finished anyway)."""
        if self.max_failure_ratio is None or self.num_finished >= self.max_evals or \
                self.run_finished < max(MIN_EVALS_FOR_RATIO, self.evaluator.num_workers):
            return False
        return self.run_failed > self.max_failure_ratio * self.run_finished

    @interrupts.deferred()  # a SIGINT/SIGTERM waits until the batch is written and told
    def _record(self, results: list[EvalResult], write: bool, restore: bool = False) -> list[EvalResult]:
        """Record and tell the results not seen yet (and return them); ``restore``: they come from an
        earlier run, so the search first rebuilds what ``tell`` does not carry (:meth:`Search.restore`)."""
        fresh = [r for r in results if r.job_id not in self._known]
        if not fresh:
            return []
        if restore:
            self.search.restore(fresh)
        if self.objectives is not None:
            for r in fresh:
                self.objectives.take(r)
                if r.metadata.get(RESULT_KEY) is not None:
                    self._objective_rows.append(r.metadata[RESULT_KEY])
        if write:
            self.store.append(fresh)
            self.lock.touch()
        self._known.update(r.job_id for r in fresh)
        self._seen.update(_key(r.config) for r in fresh)
        self.search.tell([(r.config, self._told(r)) for r in fresh])
        self.num_finished += len(fresh)
        for r in fresh:
            if r.status == STOPPED:
                self.num_stopped += 1
            if told_objective(r) is None:
                self.num_failed += 1
                if len(self.first_errors) < 3 and first_line(r.error) not in {first_line(e.error) for e in self.first_errors}:
                    self.first_errors.append(r)  # the first distinct errors
            elif r.ok and (self.best is None or r.objective > self.best.objective):  # type: ignore[operator]
                self.best = r
        return fresh

    def _told(self, result: EvalResult) -> Any:
        return told_objective(result) if self.objectives is None else told_objectives(result)

    @interrupts.deferred()
    def _tell_peers(self, force: bool = False) -> None:
        """Tell the search the results other agents recorded since the last look (not written here),
        and exclude what they submitted since."""
        if self.peers is None:
            return
        fresh = [r for r in self.peers.poll(force=force) if r.job_id not in self._known]
        if fresh:
            self._known.update(r.job_id for r in fresh)
            self._seen.update(_key(r.config) for r in fresh)
            self.search.tell([(r.config, self._told(r)) for r in fresh])
            self.num_from_peers += len(fresh)
        claims = self.peers.take_claims()
        if claims:
            self.search.exclude(claims)

    def _check_repeats(self, configs: list[dict[str, Any]]) -> None:
        if self._warned_repeat or not self._seen:
            return
        keys = [_key(c) for c in configs if _key(c) in self._seen]
        if not keys:
            return
        self._warned_repeat = True
        if all(k in self._resumed_keys for k in keys):
            log.warning(
                "the search proposed %d configuration(s) already evaluated before this run resumed "
                "(a resumed search seeded as before?); they are evaluated again. Give the search another "
                "random_state.", len(keys),
            )
        else:
            log.warning(
                "the search proposed %d configuration(s) already evaluated in this run (a space with "
                "few distinct configurations?); they are evaluated again. Lower --max-evals or widen the "
                "space.", len(keys),
            )

    # ----------------------------------------------------------------- report
    def summary(self) -> str:
        """One line: evaluations, failures, best objective and configuration, results file."""
        best = (
            f"best objective {self.best.objective:.6g} at {self.best.config}"
            if self.best is not None
            else "no successful evaluation"
        )
        if self.objectives is not None and self._objective_rows:
            import numpy as np

            from hpcnas.search.multiobjective import pareto_front

            front = int(pareto_front(np.asarray(self._objective_rows, dtype=float)).sum())
            best = (f"{front} evaluation(s) on the Pareto front of {', '.join(self.objectives.names)} "
                    f"(best {self.objectives.names[0]} {self.best.objective:.6g})" if self.best is not None else best)
        resumed = f" ({self.num_resumed} resumed)" if self.num_resumed else ""
        resumed += f", {self.num_from_peers} more told by the other agents" if self.peers is not None else ""
        stopped = f", {self.num_stopped} stopped early" if self.num_stopped else ""
        return (
            f"{self.num_finished} evaluations{resumed}, {self.num_failed} failed{stopped}, {best}; "
            f"results in {self.store.path}"
        )


    def summary_event(self) -> dict[str, Any]:
        """The summary as a JSON-able dict (``--log-format json``)."""
        return {
            "event": "end", "finished": self.num_finished, "resumed": self.num_resumed, "failed": self.num_failed,
            "stopped_early": self.num_stopped, "stopped_by": self.stopped_by,
            "best": self.best.objective if self.best is not None else None,
            "best_job_id": self.best.job_id if self.best is not None else None,
            "best_config": self.best.config if self.best is not None else None,
            "results": self.store.path, "error": self.failure(),
        }

    def failure(self) -> str | None:
        """One line when the search failed -- every evaluation failed, or failures stopped it --
        naming the first errors; ``None`` otherwise."""
        errors = "; ".join(
            f"{first_line(r.error) or r.status} ({r.status}, job {r.job_id}"
            + (f", output in {r.log})" if r.log else ")")
            for r in self.first_errors
        )
        errors = ("first error: " if len(self.first_errors) == 1 else "first errors: ") + errors
        if self.stopped_by == "failures":
            return (
                f"stopped after {self.run_finished} evaluations: {self.run_failed} failed, more than "
                f"--max-failure-ratio {self.max_failure_ratio:g}; {errors}; fix the run function "
                "and run the same command again to resume (--max-failure-ratio 1 never stops)"
            )
        if self.num_finished and self.num_failed == self.num_finished:
            return (
                f"no evaluation succeeded ({self.num_failed} failed); {errors}; "
                "fix the run function and start again in another --output-dir"
            )
        return None


@contextmanager
def _charged(evaluator: Evaluator) -> Iterator[None]:
    """Report the master's own time in the block (its thread's CPU time and wall time) to the
    evaluator: a virtual clock charges it, so that simulated utilization counts a slow master."""
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        yield
    finally:
        evaluator.charge(time.thread_time() - cpu, time.perf_counter() - wall)


def _key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)
