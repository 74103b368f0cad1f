"""How the local evaluator starts its workers (forks of a zygote) and keeps evaluations queued ahead."""
from __future__ import annotations

import os
import signal
from typing import Any

import psutil
import pytest

from hpcnas.core.errors import UsageError
from hpcnas.evaluator import create_evaluator
from hpcnas.evaluator.base import DONE, FAILED, Evaluator
from tests.support.evaluator_suite import RF, gather_n

WAIT = 60.0


@pytest.fixture
def make_evaluator():
    built: list[Evaluator] = []

    def make(run_function: Any, num_workers: int = 2, **options: Any) -> Evaluator:
        evaluator = create_evaluator("local", run_function, num_workers=num_workers, **options)
        built.append(evaluator)
        return evaluator

    yield make
    for evaluator in built:
        evaluator.close()


@pytest.mark.parametrize("knob", ["1", "0"])
def test_workers_are_forks_of_one_zygote_in_sessions_of_their_own_or_fresh_with_the_knob_off(
        monkeypatch, make_evaluator, knob) -> None:
    monkeypatch.setenv("HPCNAS_FORK_SERVER", knob)
    evaluator = make_evaluator(RF + "pid", num_workers=3)
    evaluator.submit([{"x": i} for i in range(3)])
    results = gather_n(evaluator, 3, WAIT)
    assert {r.status for r in results} == {DONE}
    pids = {int(r.objective) for r in results}
    assert len(pids) == 3
    parents = {psutil.Process(pid).ppid() for pid in pids}
    assert all(os.getpgid(pid) == pid for pid in pids)  # each leads its own group (killed as a whole)
    if knob == "1":
        assert len(parents) == 1 and parents != {os.getpid()}
        zygote = parents.pop()
        assert "hpcnas.balsam.zygote" in " ".join(psutil.Process(zygote).cmdline())
        assert os.getsid(zygote) == zygote != os.getsid(0)  # a signal to the master's group misses it
        assert "hpcnas.evaluator.local_worker" in " ".join(psutil.Process(pids.pop()).cmdline())
    else:
        assert parents == {os.getpid()}


def test_a_dead_zygote_fails_the_running_evaluation_and_later_workers_start_fresh(make_evaluator, capfd) -> None:
    evaluator = make_evaluator(RF + "sleep_then_echo", num_workers=1)
    evaluator.submit([{"sleep": 120}])
    zygote = evaluator._spawner._server.proc.pid  # started with the first worker
    os.kill(zygote, signal.SIGKILL)  # the worker dies with it (its parent-death signal)
    [lost] = gather_n(evaluator, 1, WAIT)
    assert lost.status == FAILED and "worker process was killed by SIGKILL" in lost.error
    evaluator.submit([{"sleep": 0.0, "value": 3.0}])
    [later] = gather_n(evaluator, 1, WAIT)
    assert later.status == DONE and later.objective == 3.0
    assert psutil.Process(later.metadata["pid"]).ppid() == os.getpid()  # a fresh interpreter now
    err = capfd.readouterr().err
    assert err.count("fork server") == 1 and f"pid {zygote}" in err


def test_a_free_worker_takes_the_evaluation_queued_ahead_without_waiting_for_the_master(make_evaluator) -> None:
    evaluator = make_evaluator(RF + "sleep_then_echo", num_workers=2, queue_ahead=1)
    assert evaluator.num_free == 3
    evaluator.submit([{"sleep": 0.3, "value": float(i)} for i in range(3)])
    first = gather_n(evaluator, 1, WAIT)
    assert evaluator.num_pending == 3 - len(first)
    results = first + gather_n(evaluator, 3 - len(first), WAIT)  # nothing submitted in between
    assert sorted(r.objective for r in results) == [0.0, 1.0, 2.0]
    queued = next(r for r in results if r.objective == 2.0)
    before = next(r for r in results if r.worker == queued.worker and r.objective != 2.0)
    assert queued.start_time - before.end_time < 0.3  # started as the worker came free


def test_queue_ahead_defaults_to_one_per_eight_workers_and_refuses_a_negative(make_evaluator) -> None:
    assert make_evaluator(RF + "echo", num_workers=7).num_free == 7  # none below 8: a sequential search waits
    assert make_evaluator(RF + "echo", num_workers=16).num_free == 18
    with pytest.raises(UsageError, match=r"^--queue-ahead must be an integer >= 0, got -1$"):
        create_evaluator("local", RF + "echo", num_workers=2, queue_ahead=-1)
