"""The shared evaluator contract on the ``mpi`` evaluator, plus its multi-rank behaviour.

Not collected by a normal pytest run: :mod:`tests.support.mpi_driver` runs this module with
pytest on rank 0 of ``mpirun -n 4`` (ranks 1..3 serve evaluations), and
``tests/e2e/test_mpi_evaluator.py`` asserts on what it reports.
"""
from __future__ import annotations

import json
import os

import pytest

from hpcnas.core.errors import UsageError
from hpcnas.evaluator.base import DONE, FAILED, TIMEOUT, create_evaluator
from tests.support.evaluator_suite import (RF, EvaluatorSuite, ProcessIsolationSuite, RecoverSuite, TimeoutSuite,
                                           gather_n)

WAIT = 60.0


@pytest.fixture
def make_evaluator():
    built = []

    def make(run_function, num_workers=2, eval_timeout=None, **options):
        ev = create_evaluator("mpi", run_function, num_workers=num_workers, eval_timeout=eval_timeout, **options)
        built.append(ev)
        return ev

    yield make
    for ev in built:
        ev.close()


class TestMPIContract(EvaluatorSuite, ProcessIsolationSuite, TimeoutSuite, RecoverSuite):
    wait = WAIT

    @pytest.fixture
    def make_evaluator(self, make_evaluator):  # noqa: F811 - the module fixture
        return make_evaluator


def test_resume_has_no_state_of_its_own(make_evaluator):
    """Resume comes from results.csv (the search master); the backend adopts nothing."""
    ev = make_evaluator(RF + "echo")
    assert ev.recover() == [] and ev.num_pending == 0


def test_evaluations_get_communicators_of_the_ranks_they_ask_for(make_evaluator, tmp_path):
    ev = make_evaluator(RF + "mpi_group", num_workers=3, resources=RF + "mpi_ranks")
    marker = str(tmp_path / "one-rank-ran")  # the two-rank evaluation ends only once the one-rank one ran
    ids = ev.submit([{"k": 2, "wait_for": marker}, {"k": 1, "touch": marker}, {"k": 3}])
    by_id = {r.job_id: r for r in gather_n(ev, 3, WAIT)}
    two, one, three = (by_id[i] for i in ids)
    assert [r.status for r in (two, one, three)] == [DONE] * 3, [r.error for r in (two, one, three)]
    assert (two.objective, one.objective, three.objective) == (2.0, 1.0, 3.0)
    assert json.loads(two.metadata["m"]["members"]) == [1, 2] and two.worker == "rank-1+2"
    assert one.worker == "rank-3" and one.metadata["m"]["api_size"] == 1  # COMM_SELF in its worker process
    assert json.loads(three.metadata["m"]["members"]) == [1, 2, 3] and three.metadata["m"]["api_size"] == 3
    # Each rank stamps its own times. The one-rank evaluation touches the marker and only then
    # returns and stamps its end, so its end may come a little after the two-rank one's: what is
    # ordered is that it started before the two-rank one ended, and that the three-rank one (it needs
    # ranks 1, 2 and 3) started only after both had ended.
    assert one.start_time <= two.end_time
    assert three.start_time >= max(one.end_time, two.end_time)


def test_ranks_per_eval_sets_default_workers_and_group_size(make_evaluator):
    ev = make_evaluator(RF + "mpi_group", num_workers=None, ranks_per_eval=3)
    assert ev.num_workers == 1
    ev.submit([{}])
    (result,) = gather_n(ev, 1, WAIT)
    assert result.objective == 3.0 and result.worker == "rank-1+2+3"


def test_too_many_ranks_is_a_failed_result_naming_mpirun(make_evaluator):
    ev = make_evaluator(RF + "mpi_group", resources=RF + "mpi_ranks")
    ev.submit([{"k": 9}, {"k": 1}])
    results = sorted(gather_n(ev, 2, WAIT), key=lambda r: r.config["k"])
    assert results[0].status == DONE
    assert results[1].status == FAILED and "asks for 9 MPI ranks" in results[1].error
    assert "mpirun -n 10" in results[1].error


def test_a_failing_rank_fails_its_group_at_once(make_evaluator, tmp_path):
    """Sub-rank 1 fails while sub-rank 0 is busy for 3 s more: FAILED at once; the next 3-rank
    evaluation waits for sub-rank 0 to come back."""
    ev = make_evaluator(RF + "mpi_group", ranks_per_eval=3, num_workers=1)
    returned = tmp_path / "lead-returned"
    ev.submit([{"fail_on": 1, "lead_sleep": 3.0, "touch": str(returned)}])
    (result,) = gather_n(ev, 1, WAIT)
    assert result.status == FAILED and "failing on sub-rank 1" in result.error and "rank 2" in result.error
    assert not returned.exists()
    ev.submit([{}])
    (again,) = gather_n(ev, 1, WAIT)
    assert again.status == DONE and again.objective == 3.0 and again.start_time >= os.path.getmtime(returned)


def test_multi_rank_hang_times_out_and_its_ranks_come_back(make_evaluator, tmp_path):
    ev = make_evaluator(RF + "mpi_group", ranks_per_eval=3, num_workers=1, eval_timeout=0.5)
    returned = tmp_path / "returned"  # made by the timed-out evaluation when it returns, 3 s later
    ev.submit([{"sleep": 3.0, "touch": str(returned)}])
    (late,) = gather_n(ev, 1, WAIT)
    assert late.status == TIMEOUT and "set aside" in late.error and not returned.exists()
    ev.submit([{}])
    (again,) = gather_n(ev, 1, WAIT)
    assert again.status == DONE and again.objective == 3.0
    assert again.start_time >= os.path.getmtime(returned)  # its ranks came back once it returned


def test_too_many_workers_or_ranks_is_a_one_line_usage_error():
    with pytest.raises(UsageError, match="needs 8 worker ranks but mpirun -n 4 gives 3"):
        create_evaluator("mpi", RF + "echo", num_workers=4, ranks_per_eval=2)
    with pytest.raises(UsageError, match=r"--ranks-per-eval 4 needs 4 worker ranks but mpirun -n 4 gives 3 \(rank 0 "
                       r"runs the search\): run mpirun -n 5 or more"):
        create_evaluator("mpi", RF + "echo", ranks_per_eval=4)
