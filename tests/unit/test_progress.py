"""What a running search shows without a terminal: progress lines, their throttling, JSON, exit codes."""
from __future__ import annotations

import io
import json

import pytest

import tests.support.toy  # noqa: F401 - registers the 'toyrandom' search
from hpcnas.cli.main import main
from hpcnas.evaluator.base import DONE, FAILED, EvalResult
from hpcnas.evaluator.simulated import SimulatedEvaluator
from hpcnas.search.master import SearchMaster
from hpcnas.search.progress import Progress, first_line, rate_text
from tests.support.toy import Problem, ToyRandomSearch

RF = "tests.support.run_functions."
TOY = ["--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run"]
SIM = ["--evaluator", "simulated", "--default-duration", "1"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _result(job: str, objective: float | None) -> EvalResult:
    return EvalResult(job, {"x": 1.0}, objective, DONE if objective is not None else FAILED,
                      error=None if objective is not None else 'ValueError: boom (File "run.py", line 3 | raise)')


def _state(finished: int, failed: int = 0) -> dict:
    return {"finished": finished, "failed": failed, "best": 2.0, "best_job_id": "a", "rate_per_s": 0.5,
            "elapsed_s": 3.0}


def test_one_line_per_evaluation_then_one_counting_line_when_they_come_fast() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress("toy", 100, mode="lines", interval=5.0, stream=out, wall=clock, burst=1)
    progress.update([_result("a", 2.0)], _state(1))
    clock.now += 6
    progress.update([_result("b", None)], _state(2, 1))
    lines = out.getvalue().splitlines()
    assert lines == [
        "hpcnas: [  1/100] job a DONE objective 2 | best 2 (job a) | 30 evals/min | 0 failed",
        "hpcnas: [  2/100] job b FAILED: ValueError: boom | best 2 (job a) | 30 evals/min | 1 failed",
    ]
    clock.now += 1  # three more within the interval: held, and due 4 s later
    for n, job in enumerate("cde", start=3):
        progress.update([_result(job, 1.0)], _state(n, 1))
    assert len(out.getvalue().splitlines()) == 2 and progress.due_in() == pytest.approx(4.0)
    clock.now += 4
    progress.tick(_state(5, 1))
    assert out.getvalue().splitlines()[-1] == "hpcnas: [  5/100] +3 evaluations in 4.0 s | best 2 (job a) | " \
        "30 evals/min | 1 failed"
    progress.update([_result("f", 1.0)], _state(6, 1))
    progress.close(_state(6, 1))  # what is held is written at the end
    assert out.getvalue().splitlines()[-1].startswith("hpcnas: [  6/100] job f DONE")
    assert progress.due_in() is None


def test_json_lines_are_one_object_each() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress("toy", 10, mode="auto", log_format="json", interval=5.0, stream=out, wall=clock, burst=2)
    assert progress.mode == "lines"
    progress.update([_result("a", 2.0), _result("c", None)], _state(2, 1))  # within the budget: a line each
    clock.now += 1
    progress.update([_result("d", 2.0), _result("e", None)], _state(4, 2))  # budget spent: held ...
    clock.now += 5
    progress.tick(_state(4, 2))  # ... and counted into one line
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["evaluation", "evaluation", "progress"]
    assert [e["finished"] for e in events] == [1, 2, 4]
    assert events[1]["job_id"] == "c" and events[1]["error"] == "ValueError: boom" and events[1]["status"] == FAILED
    assert events[2]["new"] == 2 and events[2]["new_failed"] == 1 and events[2]["failed"] == 2


def test_the_budget_of_lines_refills_at_one_per_interval() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress("toy", 1000, mode="lines", interval=5.0, stream=out, wall=clock, burst=10)
    for n in range(1, 61):  # 60 evaluations, 0.25 s apart: 15 s
        progress.update([_result(f"j{n}", 1.0)], _state(n))
        clock.now += 0.25
    progress.close(_state(60))
    lines = out.getvalue().splitlines()
    assert [line.split(" DONE")[0] for line in lines[:10]] == [f"hpcnas: [{n:>4}/1000] job j{n}" for n in range(1, 11)]
    assert 10 + 2 <= len(lines) <= 10 + 15 / 5 + 1  # then one line per 5 s (and the last one at the end)
    counted = [int(line.split("] +")[1].split()[0]) if "] +" in line else 1 for line in lines]
    assert sum(counted) == 60 and lines[-1].startswith("hpcnas: [  60/1000]")


def test_first_line_and_rate_text() -> None:
    assert first_line('KeyError: \'x\' (Traceback (most recent call last): | File "a.py"') == "KeyError: 'x'"
    assert first_line("x" * 500, width=20) == "x" * 17 + "..."
    assert rate_text(None) == "-" and rate_text(2.0) == "2 evals/s" and rate_text(0.5) == "30 evals/min"
    assert rate_text(1 / 7200) == "0.5 evals/h"


def _master(tmp_path, run: str, max_evals: int, **kw) -> SearchMaster:
    evaluator = SimulatedEvaluator(run, num_workers=2, default_duration=1.0, origin=0.0)
    master = SearchMaster(Problem, ToyRandomSearch(Problem, random_state=0), evaluator, str(tmp_path),
                          max_evals, progress=False, **kw)
    master.run()
    return master


def test_failures_above_the_ratio_stop_the_search_and_keep_what_finished(tmp_path) -> None:
    master = _master(tmp_path, RF + "raise_error", 50)
    assert master.stopped_by == "failures" and master.num_finished == 10
    assert len(master.dataframe()) == 10  # every finished evaluation recorded
    failure = master.failure()
    assert failure.startswith("stopped after 10 evaluations: 10 failed, more than --max-failure-ratio 0.5; "
                              "first error: ValueError: boom from the run function (FAILED, job ")


def test_ratio_one_never_stops_and_no_success_is_a_failure(tmp_path) -> None:
    master = _master(tmp_path, RF + "raise_error", 12, max_failure_ratio=1.0)
    assert master.stopped_by == "max_evals" and master.num_finished == 12
    assert master.failure().startswith("no evaluation succeeded (12 failed); first error: ValueError: boom")


def test_the_ratio_does_not_stop_a_search_that_has_finished(tmp_path) -> None:
    master = _master(tmp_path, RF + "raise_error", 10)
    assert master.stopped_by == "max_evals" and master.failure().startswith("no evaluation succeeded (10 failed)")


def test_a_search_with_successes_is_no_failure(tmp_path) -> None:
    master = _master(tmp_path, "tests.support.toy.run", 12)
    assert master.failure() is None and master.stopped_by == "max_evals"


def test_cli_without_terminal_prints_a_line_per_evaluation(tmp_path, capsys) -> None:
    code = main(["hps", "toyrandom", *TOY, *SIM, "--max-evals", "3", "--log-interval", "0",
                 "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and len(out) == 5
    assert [line.split("]")[0] for line in out[1:4]] == ["hpcnas: [1/3", "hpcnas: [2/3", "hpcnas: [3/3"]
    assert all(" DONE objective " in line and " | best " in line for line in out[1:4])


def test_cli_quiet_and_json(tmp_path, capsys) -> None:
    assert main(["hps", "toyrandom", *TOY, *SIM, "--max-evals", "3", "--quiet", "--output-dir",
                 str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("hpcnas: 3 evaluations, 0 failed")
    assert main(["hps", "toyrandom", *TOY, *SIM, "--max-evals", "3", "--log-format", "json", "--log-interval", "0",
                 "--output-dir", str(tmp_path / "j")]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["start", "evaluation", "evaluation", "evaluation", "end"]
    assert events[-1]["finished"] == 3 and events[-1]["error"] is None and events[-1]["best"] is not None


def test_cli_exit_code_3_and_one_line_when_no_evaluation_succeeded(tmp_path, capsys) -> None:
    code = main(["hps", "toyrandom", "--problem", "tests.support.toy.Problem", "--run", RF + "raise_error", *SIM,
                 "--max-evals", "4", "--output-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 3
    assert captured.err.count("\n") == 1 and captured.err.startswith(
        "hpcnas: error: no evaluation succeeded (4 failed); first error: ValueError: boom from the run function")
    assert captured.out.splitlines()[-1].startswith("hpcnas: 4 evaluations, 4 failed")


def test_cli_max_failure_ratio(tmp_path, capsys) -> None:
    args = ["hps", "toyrandom", "--problem", "tests.support.toy.Problem", "--run", RF + "raise_error", *SIM,
            "--max-evals", "40", "--quiet"]
    assert main([*args, "--output-dir", str(tmp_path / "a")]) == 3
    assert "stopped after 10 evaluations" in capsys.readouterr().err
    assert main([*args, "--max-failure-ratio", "1", "--output-dir", str(tmp_path / "b")]) == 3
    assert "no evaluation succeeded (40 failed)" in capsys.readouterr().err
    assert main([*args, "--max-failure-ratio", "1.5", "--output-dir", str(tmp_path / "c")]) == 2
    assert "--max-failure-ratio must be between 0 and 1" in capsys.readouterr().err


def test_held_lines_do_not_slice_a_virtual_clock(tmp_path, capsys) -> None:
    """Lines held by the throttle wait for the next results on the simulated evaluator's clock, rather
    than cutting its hour-long evaluations into wall-clock-sized waits."""

    class CountingGathers(SimulatedEvaluator):
        gathers = 0

        def _gather(self, timeout):
            type(self).gathers += 1
            return super()._gather(timeout)

    evaluator = CountingGathers("tests.support.toy.run", num_workers=2, default_duration=3600.0, origin=0.0)
    master = SearchMaster(Problem, ToyRandomSearch(Problem, random_state=0), evaluator, str(tmp_path), 20,
                          progress="lines", log_interval=60.0)
    master.run()
    assert master.num_finished == 20 and CountingGathers.gathers <= 25
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("hpcnas: [ 1/20] job ") and lines[-1].startswith("hpcnas: [20/20] +")
