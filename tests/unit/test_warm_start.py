"""``--warm-start results.csv`` (issue 14): an earlier search's evaluations, hpcnas's or DeepHyper's,
are told to the new search before it asks anything, and are neither run nor written again."""
from __future__ import annotations

import pandas as pd
import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.problem import HpProblem
from hpcnas.search.results_deephyper import layout, to_hpcnas, warm_start

OLD_013 = ("p:x,p:units,objective,job_id,m:timestamp_submit,m:timestamp_gather\n"
           "-1.5,2,-2.25,0,0.1,1.2\n0.5,3,-0.25,1,0.1,1.9\n3.0,4,F_diverged,2,1.2,2.5\n30.0,4,-1,3,1.9,3.3\n")


def problem() -> HpProblem:
    p = HpProblem()
    p.add_hyperparameter((-10.0, 10.0), "x")
    p.add_hyperparameter((1, 8), "units")
    return p


def test_warm_start_pairs_keep_types_failures_and_skip_foreign_rows(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text(OLD_013)
    pairs, skipped = warm_start(str(path), problem())
    assert pairs == [({"x": -1.5, "units": 2}, -2.25), ({"x": 0.5, "units": 3}, -0.25), ({"x": 3.0, "units": 4}, None)]
    assert isinstance(pairs[0][0]["units"], int) and skipped == 1  # x = 30 is outside the space


def test_deephyper_02_layout_to_hpcnas_columns():
    df = pd.DataFrame({"x": [1.0, 2.0], "objective": [0.5, float("nan")], "elapsed_sec": [3.0, 4.0]})
    assert layout(list(df.columns)) == "0.2"
    out = to_hpcnas(df, "0.2")
    assert out["p:x"].tolist() == [1.0, 2.0] and out["status"].tolist() == ["DONE", "FAILED"]
    assert out["end_time"].tolist() == [3.0, 4.0]


def test_warm_start_is_told_before_the_first_ask(tmp_path, monkeypatch):
    from hpcnas.cli.main import main
    from hpcnas.search.base import Search

    (tmp_path / "old.csv").write_text(OLD_013)
    (tmp_path / "prob.py").write_text(
        "from hpcnas.problem import HpProblem\nProblem = HpProblem()\n"
        "Problem.add_hyperparameter((-10.0, 10.0), 'x')\nProblem.add_hyperparameter((1, 8), 'units')\n"
        "def run(config):\n    return {'objective': -config['x'] ** 2, 'duration': 1.0}\n")
    events: list = []
    tell, ask = Search.tell, Search.ask
    monkeypatch.setattr(Search, "tell", lambda self, r: (events.append(("tell", list(r))), tell(self, r))[1])
    monkeypatch.setattr(Search, "ask", lambda self, n=1: (events.append(("ask", n)), ask(self, n))[1])
    code = main(["hps", "random", "-p", str(tmp_path / "prob.py"), "-r", f"{tmp_path / 'prob.py'}:run",
                 "--warm-start", str(tmp_path / "old.csv"), "--evaluator", "simulated", "--max-evals", "3",
                 "--no-progress", "--output-dir", str(tmp_path / "out")])
    assert code == 0
    assert events[0][0] == "tell" and len(events[0][1]) == 3 and events[0][1][2][1] is None
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(results) == 3 and (results["status"] == "DONE").all()


def test_warm_start_file_of_another_problem_is_one_line(tmp_path):
    (tmp_path / "old.csv").write_text("p:y,objective,job_id\n1.0,2.0,0\n")
    with pytest.raises(HpcnasError, match="none of its 1 row"):
        warm_start(str(tmp_path / "old.csv"), problem())
