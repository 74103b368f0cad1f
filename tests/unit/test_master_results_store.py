"""results.csv round trips: types, conditional (inactive) hyper-parameters, JSON cells, truncation.

(Damage and edits: tests/unit/test_results_damage.py.)
"""
from __future__ import annotations

import json

import ConfigSpace as CS
import numpy as np
import pytest

from hpcnas.evaluator.base import DONE, FAILED, EvalResult
from hpcnas.problem import HpProblem
from hpcnas.search.results_store import ResultsStore, recorded_count


def conditional_problem() -> HpProblem:
    problem = HpProblem()
    opt = problem.add_hyperparameter(["adam", "sgd"], "optimizer")
    momentum = problem.add_hyperparameter((0.0, 0.99), "momentum")
    problem.add_hyperparameter((1, 512, "log-uniform"), "units")
    problem.add_hyperparameter([True, False], "batchnorm")
    problem.add_hyperparameter([0.1, 0.25, 0.5], "dropout", ordinal=True)
    problem.add_condition(CS.EqualsCondition(momentum, opt, "sgd"))
    return problem


def test_round_trip_keeps_types_and_inactive_parameters(tmp_path) -> None:
    problem = conditional_problem()
    configs = problem.sample(30, 3)
    assert any("momentum" not in c for c in configs) and any("momentum" in c for c in configs)
    store = ResultsStore(str(tmp_path), problem)
    results = [
        EvalResult(f"j{i}", c, float(i) if i % 4 else None, DONE if i % 4 else FAILED,
                   error=None if i % 4 else "boom,\n\"quoted\"", submit_time=1.5, start_time=2.0, end_time=3.25,
                   worker="w0")
        for i, c in enumerate(configs)
    ]
    store.append(results[:10])
    store.append(results[10:])
    store.close()
    loaded = ResultsStore(str(tmp_path), problem).load()
    assert [r.config for r in loaded] == configs
    for a, b in zip(loaded, results):
        assert (a.job_id, a.objective, a.status, a.worker) == (b.job_id, b.objective, b.status, b.worker)
        assert (a.submit_time, a.start_time, a.end_time) == (1.5, 2.0, 3.25)
        assert type(a.config["units"]) is int and type(a.config["batchnorm"]) is bool
    assert loaded[0].error == 'boom, | "quoted"'
    assert recorded_count(str(tmp_path)) == 30


def test_json_cells_for_lists_and_problems_without_names(tmp_path) -> None:
    class Opaque:  # a problem exposing neither names nor a space
        def to_json(self) -> str:
            return "{}"

    store = ResultsStore(str(tmp_path), Opaque())
    config = {"arch_seq": [1, np.int64(0), 3], "lr": np.float64(0.5), "name": "x,y"}
    store.append([EvalResult("a", config, 1.0)])
    store.close()
    (loaded,) = ResultsStore(str(tmp_path), Opaque()).load()
    assert loaded.config == {"arch_seq": [1, 0, 3], "lr": 0.5, "name": "x,y"}
    header = (tmp_path / "results.csv").read_text().splitlines()[0]
    assert header.startswith("p:arch_seq,p:lr,p:name,job_id")


@pytest.mark.parametrize("cut", [7, 30])
def test_truncated_tail_is_moved_aside_and_appends_continue(tmp_path, cut) -> None:
    problem = conditional_problem()
    store = ResultsStore(str(tmp_path), problem)
    store.append([EvalResult(f"j{i}", c, 1.0) for i, c in enumerate(problem.sample(3, 1))])
    store.close()
    path = tmp_path / "results.csv"
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    store = ResultsStore(str(tmp_path), problem)
    assert [r.job_id for r in store.load()] == ["j0", "j1"]
    last = data.rstrip(b"\r\n").rfind(b"\n") + 1
    assert (tmp_path / "results.csv.damaged").read_bytes() == data[last:-cut] + b"\r\n"
    store.append([EvalResult("j9", problem.sample(1, 2)[0], 2.0)])
    store.close()
    assert [r.job_id for r in ResultsStore(str(tmp_path), problem).load()] == ["j0", "j1", "j9"]
    assert recorded_count(str(tmp_path)) == 3


def test_search_json_records_the_problem(tmp_path) -> None:
    problem = conditional_problem()
    store = ResultsStore(str(tmp_path), problem)
    store.check_and_write_metadata({"search": "x"})
    data = json.loads((tmp_path / "search.json").read_text())
    assert data["problem_fingerprint"] == problem.fingerprint()
    assert HpProblem.from_dict(data["problem"]).fingerprint() == problem.fingerprint()


def test_log_column_round_trips_and_a_file_without_it_is_still_resumed(tmp_path) -> None:
    problem = HpProblem()
    problem.add_hyperparameter((0.0, 1.0), "x")
    store = ResultsStore(str(tmp_path / "new"), problem)
    store.append([EvalResult("j1", {"x": 0.5}, 1.0, DONE, log="/out/logs/j1.log")])
    store.close()
    assert [r.log for r in ResultsStore(str(tmp_path / "new"), problem).load()] == ["/out/logs/j1.log"]
    old = tmp_path / "old"  # written before the log column
    old.mkdir()
    (old / "results.csv").write_text("p:x,job_id,objective,status,error,submit_time,start_time,end_time,duration,"
                                     "worker,reports\r\n0.5,j1,1.0,DONE,,1,2,3,1,w,\r\n")
    store = ResultsStore(str(old), problem)
    assert [r.job_id for r in store.load()] == ["j1"]
    store.append([EvalResult("j2", {"x": 0.25}, 2.0, DONE, log="/out/logs/j2.log")])  # keeps the file's header
    store.close()
    assert [(r.job_id, r.log) for r in ResultsStore(str(old), problem).load()] == [("j1", None), ("j2", None)]
