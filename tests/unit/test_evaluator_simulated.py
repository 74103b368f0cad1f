"""The simulated evaluator: shared contract suite plus the virtual clock."""
from __future__ import annotations

import time
from typing import Any

import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.evaluator import create_evaluator
from hpcnas.evaluator.base import DONE, FAILED, TIMEOUT, EvalResult, Evaluator
from tests.support.evaluator_suite import RF, EvaluatorSuite, RecoverSuite, gather_n

ORIGIN = 1_000_000.0


class TestSimulatedContract(EvaluatorSuite, RecoverSuite):
    wait = 30.0

    @pytest.fixture
    def make_evaluator(self):
        built: list[Evaluator] = []

        def make(run_function: Any, num_workers: int = 2, eval_timeout: float | None = None, **options: Any):
            options.setdefault("default_duration", 1.0)
            evaluator = create_evaluator(
                "simulated", run_function, num_workers=num_workers, eval_timeout=eval_timeout, **options
            )
            built.append(evaluator)
            return evaluator

        yield make
        for evaluator in built:
            evaluator.close()

    def check_times_plausible(self, result: EvalResult, before: float) -> None:
        # virtual times: the evaluation lasts exactly the default duration
        assert result.duration == pytest.approx(1.0)


def simulated(num_workers: int = 2, **options: Any) -> Evaluator:
    return create_evaluator("simulated", RF + "simulated", num_workers=num_workers, origin=ORIGIN, **options)


def test_discrete_event_schedule_on_two_workers() -> None:
    evaluator = simulated(2)
    ids = evaluator.submit([{"x": 1.0, "duration": d} for d in (10.0, 20.0, 5.0, 5.0)])
    results: list[EvalResult] = []
    while evaluator.num_pending:
        results.extend(evaluator.gather())
    spans = {r.job_id: (r.start_time - ORIGIN, r.end_time - ORIGIN, r.worker) for r in results}
    assert spans[ids[0]] == (0.0, 10.0, "sim-0")
    assert spans[ids[1]] == (0.0, 20.0, "sim-1")
    assert spans[ids[2]] == (10.0, 15.0, "sim-0")
    assert spans[ids[3]] == (15.0, 20.0, "sim-0")
    assert [r.job_id for r in results] == [ids[0], ids[2], ids[1], ids[3]]  # by end, ties by start order
    assert evaluator.clock() == ORIGIN + 20.0
    assert all(r.objective == -1.0 and r.status == DONE for r in results)


def test_gather_timeout_advances_the_clock_by_at_most_timeout() -> None:
    evaluator = simulated(1)
    evaluator.submit([{"duration": 10.0}])
    assert evaluator.gather(timeout=4.0) == []
    assert evaluator.clock() == ORIGIN + 4.0
    assert evaluator.gather(timeout=0) == []
    assert evaluator.clock() == ORIGIN + 4.0
    (result,) = evaluator.gather(timeout=6.0)
    assert result.end_time == ORIGIN + 10.0


def test_eval_timeout_cuts_long_evaluations() -> None:
    evaluator = simulated(1, eval_timeout=7.0)
    evaluator.submit([{"duration": 30.0}, {"duration": 3.0}])
    first, second = evaluator.gather(), evaluator.gather()
    assert first[0].status == TIMEOUT and first[0].objective is None
    assert first[0].end_time - first[0].start_time == 7.0
    assert second[0].status == DONE and second[0].start_time == ORIGIN + 7.0


def test_missing_duration_is_a_failed_result() -> None:
    evaluator = create_evaluator("simulated", RF + "quadratic", num_workers=1)
    evaluator.submit([{"x": 1.0}])
    (result,) = evaluator.gather()
    assert result.status == FAILED and "duration" in result.error


def test_duration_function_by_dotted_path() -> None:
    evaluator = create_evaluator(
        "simulated", RF + "quadratic", num_workers=1, duration_function=RF + "duration_of", origin=0.0
    )
    evaluator.submit([{"x": 2.0, "duration": 12.5}])
    (result,) = evaluator.gather()
    assert result.status == DONE and result.objective == -4.0 and result.end_time == 12.5


def test_failed_run_keeps_its_own_error() -> None:
    evaluator = create_evaluator("simulated", RF + "raise_error", num_workers=1)
    evaluator.submit([{}])
    (result,) = evaluator.gather()
    assert result.status == FAILED and "boom" in result.error


def test_bad_duration_values() -> None:
    evaluator = simulated(1)
    evaluator.submit([{"duration": -1.0}])
    (result,) = evaluator.gather()
    assert result.status == FAILED and ">= 0" in result.error
    with pytest.raises(HpcnasError, match="default-duration"):
        simulated(1, default_duration=-2.0)


def test_ten_thousand_simulated_evaluations_take_little_wall_time() -> None:
    evaluator = simulated(64)
    start = time.perf_counter()
    evaluator.submit([{"x": 0.5, "duration": 1.0 + (i % 7)} for i in range(10_000)])
    results = gather_n(evaluator, 10_000, 60, step=None)
    elapsed = time.perf_counter() - start
    assert len({r.job_id for r in results}) == 10_000
    busy = sum(r.duration for r in results)
    span = max(r.end_time for r in results) - ORIGIN
    # nothing sleeps: the real time is a small fraction of the virtual span (~625 s), even on a
    # loaded machine
    assert elapsed < span / 5, f"10k simulated evaluations took {elapsed:.1f} s for {span:.0f} virtual s"
    assert busy / (64 * span) > 0.95  # all 64 slots kept busy


def test_a_stopped_evaluation_keeps_its_last_reported_objective(monkeypatch, tmp_path) -> None:
    """An evaluation stopped early by a multi-fidelity policy is STOPPED with its last report, and
    the master learns that objective (it is not a failure)."""
    from hpcnas.evaluator.base import STOPPED
    from hpcnas.multifidelity import reporting
    from hpcnas.search.master import SearchMaster
    from tests.support.toy import Problem, ToyRandomSearch

    monkeypatch.setattr(reporting, "remote_decider", lambda address, authkey: lambda kind, payload: "stop")
    evaluator = create_evaluator("simulated", RF + "reports_twice", num_workers=1, origin=ORIGIN)
    evaluator.submit([{"x": 1.0}])
    (result,) = evaluator.gather()
    assert result.status == STOPPED and result.objective == 0.5
    search = ToyRandomSearch(Problem, random_state=0)
    master = SearchMaster(Problem, search, create_evaluator("simulated", RF + "reports_twice", num_workers=2,
                                                            origin=ORIGIN), str(tmp_path), 4, progress=False)
    master.run()
    assert master.num_stopped == 4 and master.num_failed == 0
    assert [y for _, y in search.history] == [0.5] * 4  # the search learnt the reported objective


def _slow_search(cpu: float) -> Any:
    """A random search whose every ask burns ``cpu`` seconds of CPU (a slow master)."""
    from tests.support.toy import Problem, ToyRandomSearch

    class Slow(ToyRandomSearch):
        asks = 0

        def _ask(self, n: int) -> list[dict[str, Any]]:
            self.asks += 1
            end = time.thread_time() + cpu
            while time.thread_time() < end:
                pass
            return super()._ask(n)

    return Slow(Problem, random_state=0)


def _utilization(df: Any, workers: int) -> float:
    span = df["end_time"].max() - df["start_time"].min()
    return float(df["duration"].sum() / (workers * span))


@pytest.mark.parametrize("master_time", ["cpu", "wall"])
def test_the_master_compute_time_is_charged_to_the_virtual_clock(tmp_path, master_time: str) -> None:
    """A master that needs more time per ask than the evaluations last keeps few workers busy: the
    virtual clock counts its ask time (scaled by master_time_scale), so utilization is low; the same
    search with the charge off, or with evaluations much longer than its asks, keeps them busy."""
    from tests.support.toy import Problem
    from hpcnas.search.master import SearchMaster

    def run(master_time: str, duration: float, scale: float, out: str) -> tuple[float, SearchMaster]:
        evaluator = create_evaluator("simulated", "tests.support.toy.run", num_workers=8, default_duration=duration,
                                     origin=ORIGIN, master_time=master_time, master_time_scale=scale)
        master = SearchMaster(Problem, _slow_search(0.002), evaluator, str(tmp_path / out), 40, progress=False)
        df = master.run()
        return _utilization(df, 8), master

    # each ask costs >= 2 ms x 1000 = 2 virtual s, evaluations last 1 s: at most ~1 worker of 8 busy
    slow_util, master = run(master_time, 1.0, 1000.0, "slow")
    assert slow_util < 0.5
    assert master.search.asks >= 40 // 8  # (each ask is a batch of the workers freed meanwhile)
    assert master.evaluator.master_seconds >= master.search.asks * 0.002 * 1000  # every ask was charged
    # the same search without the charge: the clock jumps from end to end, all 8 busy
    assert run("off", 1.0, 1000.0, "off")[0] > 0.95
    # evaluations 10^4 x longer than the charged asks: high utilization with the charge on
    assert run(master_time, 20_000.0, 1000.0, "fast")[0] > 0.95


def test_master_time_options_are_checked() -> None:
    with pytest.raises(HpcnasError, match="master-time"):
        simulated(1, master_time="sometimes")
    with pytest.raises(HpcnasError, match="master-time-scale"):
        simulated(1, master_time_scale=-1.0)
