"""Contract tests every evaluator backend runs (local, simulated, balsam, ray).

Use: subclass the suites that apply and provide a ``make_evaluator`` fixture returning a
factory ``(run_function: str, num_workers: int = 2, eval_timeout: float | None = None,
**options) -> Evaluator`` that closes what it built at teardown::

    class TestLocal(EvaluatorSuite, ProcessIsolationSuite, TimeoutSuite):
        @pytest.fixture
        def make_evaluator(self):
            built = []
            def make(run_function, num_workers=2, eval_timeout=None, **options):
                ev = create_evaluator("local", run_function, num_workers=num_workers,
                                      eval_timeout=eval_timeout, **options)
                built.append(ev)
                return ev
            yield make
            for ev in built:
                ev.close()

* :class:`EvaluatorSuite`: results and bookkeeping, failures judged in the evaluating process
  (exception, ``sys.exit``, NaN/inf/string/None), many concurrent submissions, polling.
* :class:`ProcessIsolationSuite`: ``os._exit`` and segfault become ``FAILED`` results and the
  evaluator keeps working (backends that run each evaluation in another process).
* :class:`TimeoutSuite`: a hanging evaluation becomes ``TIMEOUT`` after ``eval_timeout``.
* :class:`RecoverSuite`: a new life of a search (``recover()`` on an evaluator built after the
  first one closed): what finished comes back, what was pending is adopted and finishes under
  its first job id (backends that keep evaluations across lives, ``keeps_across_lives``), or
  nothing at all (backends that keep nothing). A ``reopen(first, run_function)`` fixture builds
  the new life's evaluator; the default builds a fresh one with ``make_evaluator``.

Run functions are dotted paths into :mod:`tests.support.run_functions`; ``WAIT`` bounds how
long (wall seconds) a test waits for results, generous for slow backends (set ``wait`` on the
subclass to change it).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from hpcnas.evaluator.base import DONE, FAILED, RESULT_COLUMNS, STOPPED, TIMEOUT, EvalResult, Evaluator

RF = "tests.support.run_functions."
Factory = Callable[..., Evaluator]


def gather_n(evaluator: Evaluator, n: int, wait: float, step: float | None = 0.5) -> list[EvalResult]:
    """Gather until ``n`` results arrived; fail the test after ``wait`` wall seconds."""
    results: list[EvalResult] = []
    deadline = time.monotonic() + wait
    while len(results) < n:
        if time.monotonic() > deadline:
            pytest.fail(f"only {len(results)} of {n} results after {wait} s")
        results.extend(evaluator.gather(timeout=step))
    return results


class EvaluatorSuite:
    """Behaviour every backend must show (see the module docstring)."""

    wait = 120.0

    @pytest.fixture
    def make_evaluator(self) -> Factory:  # pragma: no cover - subclasses provide it
        raise NotImplementedError("subclass EvaluatorSuite and define a make_evaluator fixture")

    def run_one(self, make_evaluator: Factory, run_function: str, config: dict[str, Any] | None = None,
                **options: Any) -> EvalResult:
        evaluator = make_evaluator(RF + run_function, num_workers=1, **options)
        job_ids = evaluator.submit([config or {}])
        (result,) = gather_n(evaluator, 1, self.wait)
        assert result.job_id == job_ids[0]
        assert evaluator.num_pending == 0
        return result

    # ----------------------------------------------------------------- success
    def test_success_result_carries_config_times_worker(self, make_evaluator: Factory) -> None:
        config = {"x": 3.0, "units": 4, "optimizer": "adam"}
        before = time.time()
        result = self.run_one(make_evaluator, "quadratic", config)
        assert result.status == DONE and result.ok
        assert result.objective == pytest.approx(-9.0)
        assert not result.error
        assert result.config == config
        assert result.worker
        assert result.submit_time is not None and result.start_time is not None and result.end_time is not None
        assert result.submit_time <= result.start_time + 1e-3 <= result.end_time + 2e-3
        assert result.duration is not None and result.duration >= 0
        self.check_times_plausible(result, before)
        row = result.to_row()
        assert list(row)[-len(RESULT_COLUMNS):] == list(RESULT_COLUMNS)
        assert row["p:optimizer"] == "adam"

    def check_times_plausible(self, result: EvalResult, before: float) -> None:
        """Real-time backends: times lie within this test's run (simulated overrides)."""
        assert before - 1 <= result.submit_time <= time.time() + 1  # type: ignore[operator]

    def test_dict_return_keeps_metadata(self, make_evaluator: Factory) -> None:
        result = self.run_one(make_evaluator, "with_metadata", {"x": 2.5})
        assert result.status == DONE and result.objective == pytest.approx(2.5)
        assert result.metadata.get("epochs") == 3
        assert result.metadata.get("m") == {"epochs": 3}  # the m:epochs column of results.csv
        assert result.to_row()["m:epochs"] == 3

    # ----------------------------------------------------------------- multi-fidelity
    def test_reports_travel_with_the_result(self, make_evaluator: Factory) -> None:
        result = self.run_one(make_evaluator, "reports_twice")
        assert result.status == DONE and result.objective == 1.0
        assert [tuple(r) for r in result.reports] == [(1.0, 0.5), (2.0, 0.7)]

    def test_a_scheduler_stop_is_stopped_with_its_last_report(self, make_evaluator: Factory) -> None:
        """The search's evaluation environment (the policy server's address, given as the master
        gives it) reaches this backend's run side, its reports reach the scheduler under the
        evaluation's job id, and a stopped evaluation comes back ``STOPPED`` with its last
        reported objective, not as a failure."""
        from hpcnas.multifidelity import ASHA
        from hpcnas.multifidelity.server import PolicyServer

        server = PolicyServer(ASHA(min_resource=1, max_resource=9, reduction_factor=3), host="127.0.0.1")
        try:
            evaluator = make_evaluator(RF + "report_epochs", num_workers=1)
            evaluator.use_evaluation_env(server.env())
            evaluator.submit([{"x": 1.0}])
            (good,) = gather_n(evaluator, 1, self.wait)
            evaluator.submit([{"x": 0.5}])
            (stopped,) = gather_n(evaluator, 1, self.wait)
            # one trial id from submit to the scheduler: the reports came under the job ids
            trials = (server.trials_of({"x": 1.0}), server.trials_of({"x": 0.5}))
        finally:
            server.close()
        assert trials == ([good.job_id], [stopped.job_id])
        assert good.status == DONE and good.objective == pytest.approx(0.9), good
        assert len(good.reports) == 9
        # second at rung 1 (top 1 of 2): stopped right after its first report
        assert stopped.status == STOPPED, stopped
        assert stopped.objective == pytest.approx(0.05) and stopped.error is None
        assert [tuple(r) for r in stopped.reports] == [(1.0, pytest.approx(0.05))]

    # ----------------------------------------------------------------- judged failures
    def test_exception_is_failed_result(self, make_evaluator: Factory) -> None:
        result = self.run_one(make_evaluator, "raise_error")
        assert result.status == FAILED and result.objective is None
        assert "boom from the run function" in (result.error or "")

    def test_sys_exit_is_failed_result(self, make_evaluator: Factory) -> None:
        result = self.run_one(make_evaluator, "call_sys_exit")
        assert result.status == FAILED and result.objective is None
        assert "SystemExit" in (result.error or "") or "exit" in (result.error or "").lower()

    @pytest.mark.parametrize(
        "run_function, words",
        [("return_nan", "nan"), ("return_inf", "inf"), ("return_string", "not a number"), ("return_none", "None")],
    )
    def test_non_number_is_failed_result(self, make_evaluator: Factory, run_function: str, words: str) -> None:
        result = self.run_one(make_evaluator, run_function)
        assert result.status == FAILED and result.objective is None and not result.ok
        assert words in (result.error or "")

    def test_failure_does_not_stop_the_evaluator(self, make_evaluator: Factory) -> None:
        evaluator = make_evaluator(RF + "echo", num_workers=2)
        evaluator.submit([{"value": "nope"}, {"value": 2.0}])
        results = gather_n(evaluator, 2, self.wait)
        by_status = {r.status: r for r in results}
        assert set(by_status) == {FAILED, DONE}
        evaluator.submit([{"value": 5.0}])
        (again,) = gather_n(evaluator, 1, self.wait)
        assert again.objective == 5.0

    # ----------------------------------------------------------------- bookkeeping
    def test_many_concurrent_submissions(self, make_evaluator: Factory) -> None:
        evaluator = make_evaluator(RF + "echo", num_workers=2)
        configs = [{"value": float(i)} for i in range(24)]
        job_ids = evaluator.submit(configs[:10]) + evaluator.submit(configs[10:])
        assert len(job_ids) == len(set(job_ids)) == 24
        assert evaluator.num_pending == 24 and evaluator.num_free == 0
        results = gather_n(evaluator, 24, self.wait)
        assert sorted(r.job_id for r in results) == sorted(job_ids)
        assert all(r.status == DONE for r in results)
        assert all(r.objective == r.config["value"] for r in results)
        by_id = dict(zip(job_ids, configs))
        assert all(r.config == by_id[r.job_id] for r in results)
        assert len({r.worker for r in results}) <= 2
        assert evaluator.num_pending == 0 and evaluator.num_free == 2
        assert evaluator.gather(timeout=0) == []

    def test_gather_zero_polls_without_blocking(self, make_evaluator: Factory) -> None:
        evaluator = make_evaluator(RF + "sleep_then_echo", num_workers=1)
        evaluator.submit([{"sleep": 1.0, "value": 4.0}])
        start = time.monotonic()
        assert evaluator.gather(timeout=0) == []
        assert time.monotonic() - start < 0.5
        results = gather_n(evaluator, 1, self.wait, step=0.05)
        assert results[0].objective == 4.0

    def test_gather_without_pending_returns_immediately(self, make_evaluator: Factory) -> None:
        evaluator = make_evaluator(RF + "echo", num_workers=1)
        start = time.monotonic()
        assert evaluator.gather() == []
        assert time.monotonic() - start < 0.5

    def test_job_ids_unique_across_submits(self, make_evaluator: Factory) -> None:
        evaluator = make_evaluator(RF + "echo", num_workers=1)
        ids = [j for _ in range(5) for j in evaluator.submit([{"value": 1.0}, {"value": 2.0}])]
        assert len(set(ids)) == 10
        gather_n(evaluator, 10, self.wait)

    def test_closed_evaluator_refuses_submit(self, make_evaluator: Factory) -> None:
        evaluator = make_evaluator(RF + "echo", num_workers=1)
        evaluator.close()
        evaluator.close()  # idempotent
        with pytest.raises(RuntimeError):
            evaluator.submit([{"value": 1.0}])


class ProcessIsolationSuite:
    """For backends that evaluate in another process: hard crashes are results."""

    wait = 120.0

    @pytest.mark.parametrize("run_function", ["call_os_exit", "segfault"])
    def test_process_death_is_failed_result(self, make_evaluator: Factory, run_function: str) -> None:
        evaluator = make_evaluator(RF + run_function, num_workers=1)
        evaluator.submit([{}])
        (result,) = gather_n(evaluator, 1, self.wait)
        assert result.status == FAILED and result.objective is None
        assert result.error
        assert result.worker

    def test_evaluator_survives_worker_death(self, make_evaluator: Factory) -> None:
        evaluator = make_evaluator(RF + "maybe_crash", num_workers=1)
        evaluator.submit([{"crash": True}, {"value": 2.0}, {"crash": True}, {"value": 3.0}])
        results = gather_n(evaluator, 4, self.wait)
        assert sorted(r.status for r in results) == [DONE, DONE, FAILED, FAILED]
        assert sorted(r.objective for r in results if r.ok) == [2.0, 3.0]
        assert evaluator.num_pending == 0


class TimeoutSuite:
    """For backends that support ``eval_timeout``."""

    wait = 120.0

    def test_hang_becomes_timeout(self, make_evaluator: Factory) -> None:
        evaluator = make_evaluator(RF + "hang", num_workers=1, eval_timeout=1.0)
        evaluator.submit([{}])
        start = time.monotonic()
        (result,) = gather_n(evaluator, 1, self.wait)
        assert result.status == TIMEOUT and result.objective is None
        assert time.monotonic() - start >= 0.9
        assert result.end_time is not None and result.start_time is not None
        assert result.end_time - result.start_time >= 0.9


class RecoverSuite:
    """A search restarted after its evaluator closed (see the module docstring)."""

    wait = 120.0
    #: whether evaluations outlive the evaluator that submitted them (Balsam: jobs in its DB)
    keeps_across_lives = False

    @pytest.fixture
    def reopen(self, make_evaluator: Factory) -> Callable[[Evaluator, str], Evaluator]:
        return lambda first, run_function: make_evaluator(run_function, num_workers=1)

    def test_a_new_life_recovers_what_finished_and_adopts_what_was_pending(
            self, make_evaluator: Factory, reopen: Callable[[Evaluator, str], Evaluator]) -> None:
        run_function = RF + "sleep_then_echo"
        first = make_evaluator(run_function, num_workers=1)
        configs = [{"sleep": 0.0, "value": 1.0}, {"sleep": 4.0, "value": 2.0}]
        quick_id, slow_id = first.submit(configs)
        (quick,) = gather_n(first, 1, self.wait)
        assert quick.job_id == quick_id and quick.objective == 1.0
        first.close()
        second = reopen(first, run_function)
        recovered = second.recover()
        if not self.keeps_across_lives:
            assert recovered == [] and second.num_pending == 0
            return
        by_id = {r.job_id: r for r in recovered}
        assert quick_id in by_id and by_id[quick_id].objective == 1.0 and by_id[quick_id].status == DONE
        assert by_id[quick_id].config == configs[0]
        assert len(recovered) + second.num_pending == 2  # the slow one: finished meanwhile, or adopted
        if slow_id not in by_id:
            assert second.pending_configs() == [configs[1]]
            (slow,) = gather_n(second, 1, self.wait)
            by_id[slow_id] = slow
        assert by_id[slow_id].job_id == slow_id and by_id[slow_id].objective == 2.0
        assert by_id[slow_id].config == configs[1] and second.num_pending == 0
