"""The run function's metadata is kept: ``m:<key>`` columns of results.csv (issue 14).

``{"objective": y, "metadata": {...}}`` (DeepHyper 0.13) and other keys of a returned dict
become ``m:`` columns; a key first seen later widens the file (earlier rows: empty cells),
and a search resumes from such a file.
"""
from __future__ import annotations

import pandas as pd

from hpcnas.evaluator.base import EvalResult
from hpcnas.evaluator.runner import judge, run_config
from hpcnas.problem import HpProblem
from hpcnas.search.results_store import ResultsStore


def problem() -> HpProblem:
    p = HpProblem()
    p.add_hyperparameter((0.0, 1.0), "x")
    return p


def test_deephyper_metadata_dict_and_extra_keys_are_user_metadata():
    objective, error, meta = judge({"objective": 1.5, "metadata": {"loss": 0.25, "arch": [1, 2]}, "epochs": 3})
    assert objective == 1.5 and error is None
    assert meta["m"] == {"loss": 0.25, "arch": "[1, 2]", "epochs": 3}


def test_run_job_parameters_and_f_reason():
    outcome = run_config(lambda job: job.parameters["x"] + job["x"], {"x": 0.5})
    assert outcome.status == "DONE" and outcome.objective == 1.0
    outcome = run_config(lambda job: "F_out_of_memory", {"x": 0.5})
    assert outcome.status == "FAILED" and "F_out_of_memory" in outcome.error


def result(i: int, meta: dict | None) -> EvalResult:
    return EvalResult(job_id=str(i), config={"x": i / 10}, objective=float(i), metadata={"m": meta} if meta else {})


def test_metadata_columns_written_widened_and_resumed(tmp_path):
    store = ResultsStore(str(tmp_path), problem())
    store.append([result(1, None)])  # a failure-like first row: no metadata yet
    store.append([result(2, {"loss": 0.5})])
    store.append([result(3, {"loss": 0.25, "acc": 0.9})])
    store.close()
    frame = pd.read_csv(tmp_path / "results.csv")
    assert list(frame.columns)[-2:] == ["m:loss", "m:acc"]
    assert frame["m:loss"].tolist()[1:] == [0.5, 0.25] and pd.isna(frame["m:loss"].iloc[0])
    assert frame["m:acc"].iloc[2] == 0.9
    again = ResultsStore(str(tmp_path), problem())
    assert [r.job_id for r in again.load()] == ["1", "2", "3"]
    again.append([result(4, {"loss": 0.125})])
    again.close()
    frame = pd.read_csv(tmp_path / "results.csv")
    assert len(frame) == 4 and frame["m:loss"].iloc[3] == 0.125
