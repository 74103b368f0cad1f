"""The search master loop: budgets, busy workers, results.csv, resume, recovery."""
from __future__ import annotations

import csv
import json
import logging
import os
from typing import Any

import pandas as pd
import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.evaluator import create_evaluator
from hpcnas.evaluator.base import DONE, FAILED, RESULT_COLUMNS, EvalResult
from hpcnas.evaluator.simulated import SimulatedEvaluator
from hpcnas.problem import HpProblem
from hpcnas.search.master import SearchMaster
from hpcnas.search.results_store import ResultsStore
from tests.support.toy import OtherProblem, Problem, ToyRandomSearch

RF = "tests.support.run_functions."
PARAMS = ["p:" + n for n in Problem.hyperparameter_names]


class CountingSimulated(SimulatedEvaluator):
    """Simulated evaluator that records every submission (to check the budget)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default_duration", 10.0)
        kwargs.setdefault("origin", 0.0)
        kwargs.setdefault("master_time", "off")  # exact virtual schedules (the charge: test_evaluator_simulated)
        super().__init__(*args, **kwargs)
        self.submitted: list[dict[str, Any]] = []
        self.free_at_submit: list[tuple[int, int]] = []

    def _submit(self, jobs, submit_time):
        self.free_at_submit.append((len(jobs), self.num_free))
        self.submitted.extend(c for _, c in jobs)
        super()._submit(jobs, submit_time)


def run_master(tmp_path, max_evals: int, evaluator=None, problem=Problem, seed: int = 0, **kw) -> SearchMaster:
    evaluator = evaluator or CountingSimulated("tests.support.toy.run", num_workers=4)
    search = ToyRandomSearch(problem, random_state=seed)
    master = SearchMaster(problem, search, evaluator, str(tmp_path), max_evals, progress=False, **kw)
    master.df = master.run()
    return master


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_runs_exactly_max_evals_and_writes_results_csv(tmp_path) -> None:
    master = run_master(tmp_path, 10)
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == 10 and len(master.df) == 10
    assert list(rows[0]) == PARAMS + list(RESULT_COLUMNS)
    assert len({r["job_id"] for r in rows}) == 10
    assert all(r["status"] == DONE for r in rows)
    assert master.search.num_told == 10
    assert master.num_finished == 10 and master.stopped_by == "max_evals"
    assert master.best is not None and master.best.objective == max(float(r["objective"]) for r in rows)
    assert "10 evaluations, 0 failed" in master.summary()
    meta = json.loads((tmp_path / "search.json").read_text())
    assert meta["problem_fingerprint"] == Problem.fingerprint() and meta["search"] == "toyrandom"


def test_keeps_every_worker_busy_and_never_exceeds_the_budget(tmp_path) -> None:
    evaluator = CountingSimulated("tests.support.toy.run", num_workers=4)
    run_master(tmp_path, 10, evaluator)
    assert len(evaluator.submitted) == 10
    # each submission fills exactly the free slots (and never more than the remaining budget)
    assert all(n == free for n, free in evaluator.free_at_submit[:-1])
    assert evaluator.free_at_submit[0] == (4, 4)
    # 4 workers, 10 evals of 10 virtual seconds: 3 waves
    assert evaluator.clock() == 30.0


def test_failed_evaluations_are_recorded_and_told_as_none(tmp_path) -> None:
    class Failing(ToyRandomSearch):
        pass

    evaluator = create_evaluator("simulated", RF + "return_none", num_workers=2, default_duration=1.0)
    search = Failing(Problem, random_state=1)
    master = SearchMaster(Problem, search, evaluator, str(tmp_path), 5, progress=False)
    df = master.run()
    assert (df["status"] == FAILED).all() and df["objective"].isna().all()
    assert all(y is None for _, y in search.history) and len(search.history) == 5
    assert master.num_failed == 5 and "no successful evaluation" in master.summary()
    assert "None" in df["error"].iloc[0]


def test_resume_tells_recorded_results_and_runs_only_the_rest(tmp_path) -> None:
    first = run_master(tmp_path, 6, seed=1)
    before = read_rows(tmp_path / "results.csv")
    evaluator = CountingSimulated("tests.support.toy.run", num_workers=4)
    second = run_master(tmp_path, 10, evaluator, seed=2)
    after = read_rows(tmp_path / "results.csv")
    assert after[:6] == before
    assert len(after) == 10 and len({r["job_id"] for r in after}) == 10
    assert len(evaluator.submitted) == 4
    assert second.num_resumed == 6 and second.search.num_told == 10
    # configurations come back with their types, equal to what was evaluated
    assert [c for c, _ in second.search.history[:6]] == [c for c, _ in first.search.history]
    assert [y for _, y in second.search.history[:6]] == [y for _, y in first.search.history]


def test_resume_with_budget_reached_runs_nothing(tmp_path) -> None:
    run_master(tmp_path, 5)
    evaluator = CountingSimulated("tests.support.toy.run", num_workers=2)
    master = run_master(tmp_path, 5, evaluator)
    assert evaluator.submitted == [] and master.num_finished == 5
    assert len(read_rows(tmp_path / "results.csv")) == 5


def test_truncated_last_line_is_moved_aside_with_a_warning(tmp_path, caplog) -> None:
    run_master(tmp_path, 5)
    path = tmp_path / "results.csv"
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # power loss in the middle of the last row
    with caplog.at_level(logging.WARNING, logger="hpcnas"):
        master = run_master(tmp_path, 8)
    assert any("moved 1 line(s) that are not rows (line 6: cut short" in m for m in caplog.messages)
    rows = read_rows(path)
    assert len(rows) == 8 and master.num_resumed == 4
    assert all(r["status"] == DONE and r["objective"] for r in rows)


def test_output_dir_of_another_problem_is_refused(tmp_path) -> None:
    run_master(tmp_path, 3)
    with pytest.raises(HpcnasError, match="different problem"):
        run_master(tmp_path, 3, problem=OtherProblem)


def test_results_csv_without_search_json_but_other_columns_is_refused(tmp_path) -> None:
    (tmp_path / "results.csv").write_text("p:z,job_id,objective\n0.5,abc,1.0\n")
    with pytest.raises(HpcnasError, match="other columns"):
        run_master(tmp_path, 3)


def test_timeout_on_the_evaluator_clock(tmp_path) -> None:
    evaluator = CountingSimulated("tests.support.toy.run", num_workers=2)  # 10 virtual s per eval
    master = run_master(tmp_path, 1000, evaluator, timeout=35.0)
    assert master.stopped_by == "timeout"
    assert master.num_finished == 6  # ends at 10, 20, 30 on two workers
    assert len(read_rows(tmp_path / "results.csv")) == 6


def test_recovered_results_are_merged_without_duplicates_and_pending_count(tmp_path) -> None:
    run_master(tmp_path, 3)
    recorded = read_rows(tmp_path / "results.csv")
    store = ResultsStore(str(tmp_path), Problem)
    old = store.load()

    class Recovering(CountingSimulated):
        def _recover(self):
            extra = EvalResult("recovered1", Problem.sample(1, 5)[0], 1.5, DONE, submit_time=0, start_time=0, end_time=1)
            pending_config = Problem.sample(1, 6)[0]
            # adopt one pending job: it must run (queued in the simulator) and count in the budget
            self._queue.append(("pending1", pending_config, 0.0))
            self._start_queued()
            return [old[0], extra], {"pending1": pending_config}

    evaluator = Recovering("tests.support.toy.run", num_workers=2)
    master = run_master(tmp_path, 6, evaluator)
    rows = read_rows(tmp_path / "results.csv")
    ids = [r["job_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 6
    assert ids[:3] == [r["job_id"] for r in recorded]
    assert "recovered1" in ids and "pending1" in ids
    assert len(evaluator.submitted) == 1  # 6 = 3 recorded + 1 recovered + 1 adopted + 1 new
    assert master.search.num_told == 6


def test_search_that_proposes_nothing_stops_the_loop(tmp_path) -> None:
    class Empty(ToyRandomSearch):
        def _ask(self, n):
            return []

    evaluator = CountingSimulated("tests.support.toy.run", num_workers=2)
    master = SearchMaster(Problem, Empty(Problem), evaluator, str(tmp_path), 5, progress=False)
    master.run()
    assert master.stopped_by == "exhausted" and master.num_finished == 0


def test_bad_budgets_are_usage_errors(tmp_path) -> None:
    evaluator = CountingSimulated("tests.support.toy.run", num_workers=1)
    for bad in (0, -3, 2.5):
        with pytest.raises(HpcnasError, match="max-evals"):
            SearchMaster(Problem, ToyRandomSearch(Problem), evaluator, str(tmp_path), bad)
    with pytest.raises(HpcnasError, match="timeout"):
        SearchMaster(Problem, ToyRandomSearch(Problem), evaluator, str(tmp_path), 3, timeout=0)


def test_local_evaluator_end_to_end_with_failures(tmp_path) -> None:
    with create_evaluator("local", RF + "maybe_crash", num_workers=2) as evaluator:

        class Crashy(ToyRandomSearch):
            def _ask(self, n):
                return [{"crash": (self.num_asked + i) % 3 == 0, "value": float(i)} for i in range(n)]

        from hpcnas.problem import HpProblem

        problem = HpProblem()
        problem.add_hyperparameter([True, False], "crash")
        problem.add_hyperparameter((0.0, 100.0), "value")
        master = SearchMaster(problem, Crashy(problem), evaluator, str(tmp_path), 9, progress=False)
        df = master.run()
    assert len(df) == 9
    assert (df["status"] == FAILED).sum() == 3
    assert df.loc[df["status"] == FAILED, "error"].str.contains("exited with code 9").all()
    assert set(df["worker"]) <= {"local-0", "local-1"}
    assert isinstance(df, pd.DataFrame) and os.path.exists(tmp_path / "search.json")


def test_sync_interval_still_flushes_every_batch(tmp_path) -> None:
    """With fsync spaced out, each batch is still flushed: readable while the search runs."""
    seen: list[int] = []

    class Watching(CountingSimulated):
        def _gather(self, timeout):
            if (tmp_path / "results.csv").exists():
                seen.append(len(read_rows(tmp_path / "results.csv")))
            return super()._gather(timeout)

    run_master(tmp_path, 6, Watching("tests.support.toy.run", num_workers=1), sync_interval=3600.0)
    assert seen == [1, 2, 3, 4, 5]
    assert len(read_rows(tmp_path / "results.csv")) == 6


def test_resumed_search_repeating_recorded_configurations_is_warned(tmp_path, caplog) -> None:
    run_master(tmp_path, 4, seed=5)
    with caplog.at_level(logging.WARNING, logger="hpcnas"):
        run_master(tmp_path, 6, seed=5)  # same seed: the toy search proposes the same points again
    warned = [m for m in caplog.messages if "already evaluated" in m]
    assert len(warned) == 1 and "before this run resumed (a resumed search seeded as before?)" in warned[0]


def test_a_fresh_search_on_a_tiny_space_is_not_told_it_was_resumed(tmp_path, caplog) -> None:
    tiny = HpProblem()
    tiny.add_hyperparameter(["a", "b"], "letter")
    with caplog.at_level(logging.WARNING, logger="hpcnas"):
        master = run_master(tmp_path, 6, CountingSimulated("tests.support.toy.run", num_workers=1), problem=tiny)
    warned = [m for m in caplog.messages if "already evaluated" in m]
    assert master.num_resumed == 0 and len(warned) == 1
    assert "already evaluated in this run (a space with few distinct configurations?)" in warned[0]
    assert "resumed" not in warned[0]


def test_progress_bar_on_a_terminal_shows_count_and_best(tmp_path, monkeypatch) -> None:
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    evaluator = CountingSimulated("tests.support.toy.run", num_workers=2)
    SearchMaster(Problem, ToyRandomSearch(Problem, random_state=0), evaluator, str(tmp_path), 4).run()
    text = terminal.getvalue()
    assert "4/4" in text and "best=" in text and "toyrandom" in text
    # not a terminal: no bar
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    SearchMaster(Problem, ToyRandomSearch(Problem, random_state=0), evaluator, str(tmp_path / "b"), 2).run()
    assert quiet.getvalue() == ""


def test_stopped_evaluations_are_told_with_their_objective_and_not_failures(tmp_path) -> None:
    from hpcnas.evaluator.base import STOPPED

    class Stopping(CountingSimulated):
        def _gather(self, timeout):
            results = super()._gather(timeout)
            for r in results:
                if r.objective is not None and r.objective < 0:
                    r.status = STOPPED  # as a multi-fidelity policy would leave it
            return results

    master = run_master(tmp_path, 12, Stopping("tests.support.toy.run", num_workers=2))
    told = dict((json.dumps(c, sort_keys=True), y) for c, y in master.search.history)
    assert None not in told.values()
    assert master.num_failed == 0 and master.num_stopped > 0
    assert master.best is not None and master.best.status == DONE
    assert f"{master.num_stopped} stopped early" in master.summary()
