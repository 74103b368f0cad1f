"""Several objectives: the arithmetic, the run-function contract, the searches, results.csv, CLI and API."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

import hpcnas
from hpcnas.cli.main import main as cli_main
from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.core.loading import load_attribute
from hpcnas.search import get_search_class
from hpcnas.search import multiobjective as mo
from hpcnas.search.objectives import ObjectivesRun, check_values, declare, decode_path
from tests.support.toy import Problem

MO = "tests.support.mo_runs."


# ----------------------------------------------------------------- arithmetic
def test_pareto_ranks_crowding_and_front_of_maximised_rows() -> None:
    y = np.array([[3, 1], [1, 3], [2, 2], [1, 1], [0, 0], [np.nan, 5]], dtype=float)
    assert list(mo.pareto_ranks(y)) == [0, 0, 0, 1, 2, 6]
    assert list(mo.pareto_front(y)) == [True, True, True, False, False, False]
    crowd = mo.crowding_distance(y[:3])
    assert np.isinf(crowd[0]) and np.isinf(crowd[1]) and crowd[2] == pytest.approx(2.0)
    ranks, crowding = mo.selection_keys(y)
    assert mo.tournament_winner([3, 2, 4], ranks, crowding) == 2  # the front beats rank 1 and 2
    assert mo.tournament_winner([2, 0], ranks, crowding) == 0  # same front: the more isolated one


def test_hypervolume_and_its_curve() -> None:
    y = np.array([[1, 3], [3, 1], [2, 2], [0.5, 0.5], [np.nan, 9]], dtype=float)
    # union of the boxes above (0, 0): 1*3 + 3*1 + 2*2 - overlaps = 6
    assert mo.hypervolume(y, [0, 0]) == pytest.approx(6.0)
    assert mo.hypervolume(y, [5, 5]) == 0.0  # nothing dominates the reference point
    curve = mo.hypervolume_curve(y, [0, 0])
    assert list(curve) == pytest.approx([3.0, 5.0, 6.0, 6.0, 6.0])
    for i in range(len(y)):
        assert curve[i] == pytest.approx(mo.hypervolume(y[: i + 1], [0, 0]))


def test_scalarizer_draws_simplex_weights_and_prefers_what_dominates() -> None:
    s = mo.Scalarizer(3, np.random.default_rng(0))
    y = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 2.0, 0.1], [np.nan, 1, 1]])
    scores = s.redraw(y)
    assert s.weights.sum() == pytest.approx(1.0) and (s.weights > 0).all()
    assert scores[0] > scores[1] and np.isnan(scores[3])  # (1,1,1) dominates (0,0,0)
    first = s.weights.copy()
    s.redraw(y)
    assert not np.allclose(first, s.weights)


# ----------------------------------------------------------------- declaring and checking objectives
def test_declare_counts_and_names() -> None:
    assert declare(None) is None and declare(1) is None and declare("1") is None
    assert declare(2).names == ("objective_0", "objective_1")
    assert declare("accuracy, latency").names == ("accuracy", "latency")
    assert declare(["a", "b", "c"]).columns == ["objective_0", "objective_1", "objective_2"]
    for bad, match in ((0, "from 1 to 16"), ("a,a", "repeated"), ("a,", "empty"), (True, "count or names"),
                       (2.5, "count or names")):
        with pytest.raises(UsageError, match=match):
            declare(bad)


@pytest.mark.parametrize("value, match", [
    ((1.0, 2.0, 3.0), r"returned 3 objective\(s\) but 2 are declared"),
    (1.5, r"returned one number \(1.5\) but 2 objectives are declared"),
    ((1.0, float("nan")), "objective 1 is nan, not a finite number"),
    ((float("inf"), 1.0), "objective 0 is inf"),
    (("fast", 1.0), "objective 0 is str 'fast', not a number"),
    ((True, 1.0), "objective 0 is bool"),
    ("abc", "returned str 'abc', not a tuple of 2 numbers"),
])
def test_bad_shapes_are_named(value, match) -> None:
    import re

    assert re.search(match, check_values(value, 2) or "")


def test_wrapped_run_function_travels_as_a_dotted_path_and_by_value() -> None:
    objectives = declare(2)
    path = objectives.wrap(MO + "two")
    assert isinstance(path, str) and decode_path(path) == (MO + "two", 2)
    func = load_attribute(path, "run function")  # how every backend imports it
    out = func({"x": 1.0})
    assert out["objective"] == -1.0 and out["__hpcnas_objectives__"] == [-1.0, -1.0]
    from tests.support import mo_runs

    assert objectives.wrap(mo_runs.two) == path  # a module-level function becomes its path
    wrapped = objectives.wrap(lambda c: (c["x"], -c["x"]))
    assert isinstance(wrapped, ObjectivesRun)
    again = pickle.loads(pickle.dumps(wrapped))
    assert again({"x": 2.0})["__hpcnas_objectives__"] == [2.0, -2.0]
    assert again({"x": 2.0, "bad": 1}) is not None
    assert ObjectivesRun(lambda c: (1.0,), 2)({})[:2] == "F("  # a failure with its reason
    assert ObjectivesRun(lambda c: "F_oom", 2)({}) == "F_oom"
    dict_out = load_attribute(objectives.wrap(MO + "two_as_dict"), "run function")({"x": 0.0})
    assert dict_out["metadata"] == {"note": "dict"} and dict_out["__hpcnas_objectives__"] == [0.0, -4.0]


# ----------------------------------------------------------------- searches
def _drive(name: str, n: int = 30, **options) -> tuple[object, np.ndarray]:
    from tests.support.mo_runs import two

    search = get_search_class("hps", name)(Problem, random_state=3, **options)
    search.use_objectives(2)
    rows = []
    for i in range(n):
        (config,) = search.ask(1)
        y = two(config) if i % 7 else ("bad", 1.0)  # every 7th told as a bad row: a failure
        search.tell([(config, y)])
        rows.append(y if i % 7 else (np.nan, np.nan))
    return search, np.array(rows, dtype=float)


@pytest.mark.parametrize("name, options", [("ambs", {"n_initial_points": 5}),
                                           ("age", {"population_size": 8, "sample_size": 3}),
                                           ("random", {})])
def test_each_hps_search_takes_two_objectives(name, options) -> None:
    search, rows = _drive(name, **options)
    assert search.num_told == 30 and sum(y is None for _, y in search.history) == 5
    assert mo.pareto_front(rows).sum() >= 2
    assert search.best[1] == pytest.approx(np.nanmax(rows[:, 0]))


def test_ambs_redraws_its_weights_at_each_refit_and_learns_the_scalarization() -> None:
    search, rows = _drive("ambs", n_initial_points=5)
    weights = search.scalarizer.weights.copy()
    y = search._y.view()[:, 0]
    assert np.allclose(y[~np.isnan(y)], search.scalarizer.scalarize(rows)[~np.isnan(y)])
    search._refit()
    assert not np.allclose(weights, search.scalarizer.weights)


def test_age_prefers_the_front_in_its_tournament() -> None:
    search, _ = _drive("age", population_size=8, sample_size=8)
    members = list(search.population)
    ranks, crowding = mo.selection_keys(np.array([m[1] for m in members]))
    winner = search._winner(members, np.arange(len(members)), (ranks, crowding))
    assert ranks[winner] == 0


def test_a_search_of_one_objective_refuses_several() -> None:
    from hpcnas.search.nas.random_search import RandomNas

    search = object.__new__(RandomNas)
    search.num_objectives, search.num_told, search.num_asked = 1, 0, 0
    with pytest.raises(UsageError, match="optimises one objective: --objectives 2 needs a multi-objective search"):
        search.use_objectives(2)


# ----------------------------------------------------------------- master, results.csv, API
def test_api_records_every_objective_fails_bad_rows_and_resumes(tmp_path) -> None:
    df = hpcnas.search(Problem, MO + "bad_shapes", search="ambs", evaluator="simulated", max_evals=14, seed=0,
                       output_dir=tmp_path, objectives="left,right", max_failure_ratio=1, progress=False,
                       default_duration=1.0)
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert header[header.index("objective"):header.index("objective") + 3] == ["objective", "objective_0", "objective_1"]
    ok = df[df.status == "DONE"]
    assert len(ok) and ok.objective.equals(ok.objective_0) and ok.objective_1.notna().all()
    failed = df[df.status == "FAILED"]
    assert len(failed) and failed[["objective", "objective_0", "objective_1"]].isna().all().all()
    assert failed.error.str.contains(r"declared|not a finite number|not a number").all()
    assert json.loads((tmp_path / "search.json").read_text())["objectives"] == ["left", "right"]
    again = hpcnas.search(Problem, MO + "bad_shapes", search="ambs", evaluator="simulated", max_evals=18, seed=0,
                          output_dir=tmp_path, objectives="left,right", max_failure_ratio=1, progress=False,
                          default_duration=1.0)
    assert len(again) == 18 and again.head(14).objective_1.equals(df.objective_1)
    with pytest.raises(HpcnasError, match=r"results of a search with 2 objectives .*pass --objectives 2"):
        hpcnas.search(Problem, MO + "bad_shapes", search="ambs", evaluator="simulated", max_evals=20,
                      output_dir=tmp_path, progress=False, default_duration=1.0)
    with pytest.raises(HpcnasError, match="declares 3 objectives"):
        hpcnas.search(Problem, MO + "bad_shapes", search="ambs", evaluator="simulated", max_evals=20,
                      output_dir=tmp_path, objectives=3, progress=False, default_duration=1.0)


def test_local_evaluator_with_a_lambda_and_an_old_single_objective_file(tmp_path) -> None:
    df = hpcnas.search(Problem, lambda c: (c["x"], -c["x"]), search="age", max_evals=4, num_workers=2,
                       output_dir=tmp_path / "mo", objectives=2, progress=False, population_size=2, sample_size=1)
    assert set(df.status) == {"DONE"} and (df.objective_0 == -df.objective_1).all()
    one = hpcnas.search(Problem, "tests.support.toy.run", search="random", evaluator="simulated", max_evals=3,
                        output_dir=tmp_path / "one", progress=False, default_duration=1.0)
    assert "objective_0" not in one.columns
    with pytest.raises(HpcnasError, match="results of a search with one objective, this search has 2"):
        hpcnas.search(Problem, MO + "two", search="random", evaluator="simulated", max_evals=5, objectives=2,
                      output_dir=tmp_path / "one", progress=False, default_duration=1.0)
    resumed = hpcnas.search(Problem, "tests.support.toy.run", search="random", evaluator="simulated", max_evals=5,
                            output_dir=tmp_path / "one", progress=False, default_duration=1.0)
    assert len(resumed) == 5  # an old single-objective file still loads and resumes


def test_cli_objectives_and_its_one_line_errors(tmp_path, capsys) -> None:
    common = ["--problem", "tests.support.toy.Problem", "--run", MO + "two", "--evaluator", "simulated",
              "--default-duration", "1", "--max-evals", "6", "--seed", "1", "--no-progress"]
    assert cli_main(["hps", "random", *common, "--objectives", "2", "--output-dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "on the Pareto front of objective_0, objective_1" in out
    df = pd.read_csv(tmp_path / "a" / "results.csv")
    assert df.objective_1.notna().all() and len(df) == 6
    assert cli_main(["hps", "random", *common, "--objectives", "0", "--output-dir", str(tmp_path / "b")]) == 2
    assert "--objectives must be from 1 to 16 objectives, got 0" in capsys.readouterr().err
    assert cli_main(["hps", "random", *common, "--output-dir", str(tmp_path / "c")]) == 3  # tuples are not one number
    captured = capsys.readouterr()
    assert "not a number" in captured.out + captured.err


# ----------------------------------------------------------------- analytics
def _mo_results(tmp_path):
    rows = [  # job, objective_0, objective_1, status, end_time
        ("a", 1.0, 3.0, "DONE", 10.0), ("b", None, None, "FAILED", 11.0), ("c", 3.0, 1.0, "DONE", 12.0),
        ("d", 0.5, 0.5, "DONE", 13.0), ("e", 2.0, 2.0, "DONE", 14.0),
    ]
    df = pd.DataFrame([{"p:x": i, "job_id": j, "objective": f0, "objective_0": f0, "objective_1": f1,
                        "status": s, "submit_time": 0.0, "start_time": t - 1, "end_time": t}
                       for i, (j, f0, f1, s, t) in enumerate(rows)])
    df.to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "search.json").write_text(json.dumps({"objectives": ["accuracy", "speed"]}))
    return tmp_path


def test_analytics_pareto_writes_the_front_and_the_hypervolume_curve(tmp_path, capsys) -> None:
    from hpcnas.analytics.cli import main

    (tmp_path / "run").mkdir()
    src, out = _mo_results(tmp_path / "run"), tmp_path / "an"
    assert main(["pareto", str(src), "-o", str(out), "--reference", "0,0"]) == 0
    assert "3 evaluation(s) on the Pareto front of accuracy, speed (5 evaluations, 1 failed); hypervolume 6" \
        in capsys.readouterr().out
    curve = pd.read_csv(out / "hypervolume.csv")
    assert list(curve["hypervolume"]) == pytest.approx([3.0, 3.0, 5.0, 5.0, 6.0])
    assert list(curve["elapsed_s"]) == [10.0, 11.0, 12.0, 13.0, 14.0]
    front = pd.read_csv(out / "pareto_front.csv")
    assert list(front["job_id"]) == ["c", "e", "a"] and {"accuracy", "speed", "p:x"} <= set(front.columns)
    summary = json.loads((out / "pareto_summary.json").read_text())
    assert summary["front_size"] == 3 and summary["reference"] == [0.0, 0.0] and summary["hypervolume"] == 6.0
    assert (out / "pareto.png").stat().st_size > 10_000
    assert main(["pareto", str(src), "-o", str(out), "--pair", "speed,accuracy"]) == 0
    default_ref = json.loads((out / "pareto_summary.json").read_text())["reference"]
    assert default_ref == pytest.approx([0.25, 0.25])  # worst minus 10 % of the range
    assert main(["pareto", str(src), "-o", str(out), "--pair", "speed,speed"]) == 2
    assert "--pair needs two different objectives of accuracy, speed" in capsys.readouterr().err


def test_analytics_pareto_of_a_single_objective_search_is_one_line(tmp_path, capsys) -> None:
    from hpcnas.analytics.cli import main

    pd.DataFrame([{"p:x": 1, "job_id": "a", "objective": 1.0, "status": "DONE", "submit_time": 0.0,
                   "start_time": 0.0, "end_time": 1.0}]).to_csv(tmp_path / "results.csv", index=False)
    assert main(["pareto", str(tmp_path), "-o", str(tmp_path / "an")]) == 2
    assert "'pareto' needs a search run with --objectives 2 or more" in capsys.readouterr().err


def test_a_balsam_job_runs_the_wrapped_path_and_its_report_carries_the_objectives() -> None:
    from hpcnas.balsam.job_runner import evaluate
    from hpcnas.balsam.evaluator import _dotted_path, _resource_function
    from hpcnas.evaluator.base import EvalResult

    path = declare(2).wrap(MO + "two")
    assert _dotted_path(path) == path and _resource_function(None, path) is None
    report = json.loads(json.dumps(evaluate(path, {"x": 3.0}, None)))  # what the job stores in the DB
    result = EvalResult("j", {"x": 3.0}, report["objective"], report["status"], metadata=report["metadata"])
    declare(2).take(result)
    assert result.metadata["objectives"] == (-9.0, -1.0) and "m:__hpcnas_objectives__" not in result.to_row()
    bad = json.loads(json.dumps(evaluate(declare(3).wrap(MO + "two"), {"x": 3.0}, None)))
    assert bad["status"] == "FAILED" and "returned 2 objective(s) but 3 are declared" in bad["error"]


def test_the_report_of_a_search_with_two_objectives_shows_its_front(tmp_path) -> None:
    from hpcnas.analytics.experiment import load_experiment
    from hpcnas.analytics.report import _pareto_section

    (tmp_path / "run").mkdir()
    exp = load_experiment(str(_mo_results(tmp_path / "run")))
    text = _pareto_section(exp, str(tmp_path / "an"))  # the section build_report adds
    exp.results = exp.results.drop(columns=["objective_0", "objective_1"])
    assert _pareto_section(exp, str(tmp_path / "an")) == ""  # one objective: no section
    assert "<h2>Pareto front</h2>" in text and "accuracy, speed" in text and 'alt="Pareto front and hypervolume"' in text


def test_warm_start_and_a_single_objective_search_refuse_objectives_in_one_line(tmp_path, capsys) -> None:
    common = ["--problem", "tests.support.toy.Problem", "--run", MO + "two", "--objectives", "2",
              "--output-dir", str(tmp_path / "o"), "--max-evals", "3"]
    (tmp_path / "w.csv").write_text("p:x,objective\n1.0,2.0\n")
    assert cli_main(["hps", "ambs", *common, "--warm-start", str(tmp_path / "w.csv")]) == 2
    captured = capsys.readouterr()
    assert "--warm-start tells one objective per evaluation" in captured.err and "warm start from" not in captured.out
    assert cli_main(["hps", "asha", "--searcher", "ambs", "--min-resource", "1", "--max-resource", "3", *common]) == 2
    assert "search 'asha' optimises one objective: --objectives 2 needs" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.csv").exists()


def test_an_edited_objective_cell_is_refused_naming_line_and_column(tmp_path) -> None:
    kwargs = dict(search="random", evaluator="simulated", objectives=2, output_dir=tmp_path, progress=False,
                  default_duration=1.0)
    hpcnas.search(Problem, MO + "two", max_evals=3, **kwargs)
    path = tmp_path / "results.csv"
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].strip().split(",")
    for text, match in (("abc", r"line 2 of .*column 'objective_1' holds 'abc', not a number"),
                        ("", r"line 2 of .*column 'objective_1' is empty or not finite while 'objective' holds")):
        cells = lines[1].rstrip("\r\n").split(",")
        cells[header.index("objective_1")] = text
        path.write_text(lines[0] + ",".join(cells) + "\r\n" + "".join(lines[2:]))
        with pytest.raises(HpcnasError, match=match):
            hpcnas.search(Problem, MO + "two", max_evals=4, **kwargs)
