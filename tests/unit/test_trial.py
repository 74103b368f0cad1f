"""hpcnas.core.trial: the status, the outcome's wire form, EvalResult.from_outcome and one
results.csv row, written and read back."""
from __future__ import annotations

import csv
import io
import json
import math
import pickle

import pytest

from hpcnas.core.trial import (
    DONE, FAILED, METADATA_KEY, STATUSES, STOPPED, TIMEOUT, CellError, EvalResult, Outcome, RowError, Status, decide,
    result_columns, result_from_row, told_objective,
)
from hpcnas.search.results_csv import encode, encode_text


def test_statuses_are_the_strings_of_results_csv_and_the_balsam_db():
    assert STATUSES == ("DONE", "FAILED", "TIMEOUT", "STOPPED")
    for status in Status:
        assert status == status.value and str(status) == status.value and f"{status}" == status.value
        assert repr(status) == repr(status.value)
        assert json.dumps(status) == f'"{status.value}"'
    assert Status.read("STOPPED") is STOPPED and Status.read("done") is None and Status.read(None) is None


@pytest.mark.parametrize(
    ("evidence", "status"),
    [
        ({}, DONE),
        ({"error": "ValueError: x"}, FAILED),
        ({"error": "killed", "timed_out": True}, TIMEOUT),
        ({"timed_out": True}, TIMEOUT),
        ({"stopped": True}, STOPPED),
        ({"stopped": True, "complete": True}, DONE),
        ({"error": "bad address", "stopped": True}, FAILED),
    ],
)
def test_decide_maps_the_evidence_to_one_status(evidence, status):
    assert decide(**evidence) is status


def _outcome(status: Status) -> Outcome:
    objective = None if status in (FAILED, TIMEOUT) else 0.5
    error = "RuntimeError: boom" if objective is None else None
    return Outcome(objective, status, error, 10.0, 12.5,
                   {"host": "n1", METADATA_KEY: {"loss": 0.25, "note": "x"}}, [(1.0, 0.1), (2.0, math.nan), (3.0, 0.5)])


@pytest.mark.parametrize("status", list(Status))
def test_the_wire_form_round_trips_through_json_and_pickle_for_every_status(status):
    outcome = _outcome(status)
    wire = outcome.to_wire()
    assert type(wire["status"]) is str and wire["status"] == status.value
    text = json.dumps(wire, allow_nan=False)  # the Balsam job data and output marker
    for back in (Outcome.from_wire(json.loads(text)), Outcome.from_wire(pickle.loads(pickle.dumps(wire)))):
        assert back.status is status and back.objective == outcome.objective and back.error == outcome.error
        assert (back.start_time, back.end_time) == (10.0, 12.5)
        assert back.metadata == outcome.metadata
        assert back.reports[0] == (1.0, 0.1) and math.isnan(back.reports[1][1]) and back.reports[2] == (3.0, 0.5)


def test_reports_in_the_metadata_of_earlier_balsam_jobs_are_read_as_reports():
    back = Outcome.from_wire({"objective": 1, "status": "STOPPED", "metadata": {"reports": [[1, 1.0]], "k": 2}})
    assert back.reports == [(1.0, 1.0)] and back.metadata == {"k": 2} and back.objective == 1.0


def test_an_unknown_status_on_the_wire_is_a_failure_saying_so():
    back = Outcome.from_wire({"objective": 1.0, "status": "WEIRD"})
    assert back.status is FAILED and "'WEIRD'" in (back.error or "")


def test_from_outcome_keeps_the_outcome_and_adds_the_backend_facts():
    outcome = _outcome(STOPPED)
    result = EvalResult.from_outcome("j1", {"x": 1}, outcome, submit_time=9.0, worker="w0",
                                     metadata={"pid": 7, "host": "master"}, log="/tmp/j1.log")
    assert (result.job_id, result.config, result.status, result.objective) == ("j1", {"x": 1}, STOPPED, 0.5)
    assert (result.submit_time, result.start_time, result.end_time, result.duration) == (9.0, 10.0, 12.5, 2.5)
    assert result.worker == "w0" and result.log == "/tmp/j1.log" and result.reports == outcome.reports
    assert result.metadata["pid"] == 7 and result.metadata["host"] == "n1"  # the run side's own facts win
    assert told_objective(result) == 0.5 and not result.ok


@pytest.mark.parametrize(("status", "told"), [(DONE, 0.5), (STOPPED, 0.5), (FAILED, None), (TIMEOUT, None)])
def test_the_search_is_told_the_objective_of_done_and_stopped_results_only(status, told):
    assert told_objective(EvalResult("j", {}, 0.5 if told else None, status)) == told
    assert told_objective(EvalResult("j", {}, None, DONE)) is None


def _written(result: EvalResult) -> dict[str, str]:
    """One row as results.csv holds it (the store's cell encoding), read back as text cells."""
    row = result.to_row()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow({k: encode(v) if k.startswith("p:") else encode_text(v) for k, v in row.items()})
    return next(csv.DictReader(io.StringIO(out.getvalue())))


@pytest.mark.parametrize("status", list(Status))
def test_a_row_written_and_read_back_is_the_same_result(status):
    outcome = _outcome(status)
    outcome.reports = [(1.0, 0.1), (3.0, 0.5)]
    result = EvalResult.from_outcome("ab12", {"x": 1.5, "c": "relu"}, outcome, submit_time=9.0, worker="w0",
                                     log="/out/logs/ab12.log")
    cells = _written(result)
    assert cells["status"] == status.value and list(cells)[:2] == ["p:x", "p:c"]
    assert cells["m:loss"] == "0.25" and cells["m:note"] == "x"
    back = result_from_row(cells, {"x": 1.5, "c": "relu"})
    for name in ("job_id", "config", "objective", "status", "submit_time", "start_time", "end_time", "worker",
                 "reports", "log"):
        assert getattr(back, name) == getattr(result, name), name
    assert back.error == (result.error or None)


def test_reading_a_row_names_the_cell_that_does_not_fit():
    good = {"job_id": "a", "objective": "1.0", "status": ""}
    assert result_from_row(good, {}).status is DONE  # files without statuses recorded successes
    for column, bad in [("status", {"status": "OK"}), ("objective", {"objective": "x"}), ("job_id", {"job_id": ""}),
                        ("reports", {"reports": "[1"})]:
        with pytest.raises(RowError) as err:
            result_from_row({**good, **bad}, {})
        assert err.value.column == column
    assert isinstance(RowError("x", "y"), ValueError) and issubclass(CellError, ValueError)


def test_objective_columns_come_after_objective():
    assert result_columns(("y0", "y1"))[:4] == ["job_id", "objective", "y0", "y1"]


def mentions_timeout(config):
    raise ValueError("no EvaluationTimeout here, just a bad value")


def runs_long(config):
    import time

    time.sleep(30)  # cut by the job runner's --timeout alarm
    return 1.0


def test_the_job_runner_times_out_on_its_alarm_not_on_a_word_in_the_error():
    from hpcnas.balsam.job_runner import evaluate

    failed = evaluate(f"{__name__}.mentions_timeout", {}, None)
    assert failed["status"] == "FAILED" and "EvaluationTimeout" in failed["error"]
    timed_out = evaluate(f"{__name__}.runs_long", {}, 0.05)
    assert timed_out["status"] == "TIMEOUT" and "exceeded --timeout" in timed_out["error"]
    assert Outcome.from_wire(json.loads(json.dumps(timed_out))).status is TIMEOUT
