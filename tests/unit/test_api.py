"""The one-call Python API: hpcnas.search(...) and hpcnas.load_results(...)."""
from __future__ import annotations

import json
import os

import pytest

import hpcnas
import tests.support.toy  # noqa: F401 - registers the 'toyrandom' search
from hpcnas.core.errors import HpcnasError, SearchFailed, UsageError
from tests.support.toy import Problem

RF = "tests.support.run_functions."


def test_search_is_callable_even_after_the_search_package_is_imported() -> None:
    import hpcnas.search.master  # noqa: F401 - binds hpcnas.search to the package

    assert callable(hpcnas.search) and hpcnas.search.Search is not None
    assert hpcnas.load_results is hpcnas.api.load_results


def test_search_with_a_lambda_and_the_local_evaluator(tmp_path, capsys) -> None:
    df = hpcnas.search(Problem, lambda config: -config["x"] ** 2, search="random", max_evals=4, num_workers=2,
                       output_dir=tmp_path, seed=1)
    assert len(df) == 4 and set(df["status"]) == {"DONE"}
    assert df.attrs["output_dir"] == str(tmp_path)
    assert all(os.path.isfile(path) and path.startswith(str(tmp_path / "logs")) for path in df["log"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("hpcnas: hps random | evaluator local, 2 workers | max evals 4")
    assert out[-1].startswith("hpcnas: 4 evaluations, 0 failed")
    again = hpcnas.load_results(tmp_path)
    assert list(again["job_id"]) == list(df["job_id"])
    assert list(hpcnas.load_results(tmp_path / "results.csv")["job_id"]) == list(df["job_id"])


def test_options_go_to_the_search_or_the_evaluator(tmp_path) -> None:
    df = hpcnas.search(Problem, "tests.support.toy.run", search="toyrandom", evaluator="simulated", max_evals=3,
                       output_dir=tmp_path, progress=False, note="hello", default_duration=2.5)
    assert set(df["duration"]) == {2.5}
    meta = json.loads((tmp_path / "search.json").read_text())
    assert meta["search_options"] == {"note": "hello"} and meta["evaluator_options"] == {"default_duration": 2.5}


def test_unknown_option_is_one_line(tmp_path) -> None:
    with pytest.raises(UsageError, match=r"unknown option\(s\) kapa for search 'toyrandom' with evaluator "
                                         r"'simulated': choose from .*default_duration.*note"):
        hpcnas.search(Problem, "tests.support.toy.run", search="toyrandom", evaluator="simulated", max_evals=3,
                      output_dir=tmp_path, kapa=1.0)
    assert not (tmp_path / "results.csv").exists()


def test_a_search_where_every_evaluation_failed_raises_with_the_results(tmp_path) -> None:
    with pytest.raises(SearchFailed, match=r"no evaluation succeeded \(3 failed\); first error: ValueError: boom") \
            as info:
        hpcnas.search(Problem, RF + "raise_error", search="toyrandom", evaluator="simulated", max_evals=3,
                      output_dir=tmp_path, progress=False, default_duration=1.0)
    assert len(info.value.results) == 3 and info.value.exit_code == 3


def test_default_output_dir_is_new_and_named_after_the_search(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    options = dict(search="toyrandom", evaluator="simulated", max_evals=2, default_duration=1.0, progress=False)
    first = hpcnas.search(Problem, "tests.support.toy.run", **options)
    second = hpcnas.search(Problem, "tests.support.toy.run", **options)
    dirs = {first.attrs["output_dir"], second.attrs["output_dir"]}
    assert len(dirs) == 2 and all(os.path.basename(d).startswith("hpcnas-toyrandom-") for d in dirs)


def test_bad_problem_and_missing_results_are_one_line(tmp_path) -> None:
    with pytest.raises(UsageError, match="problem must be an HpProblem or a NaProblem"):
        hpcnas.search(object(), "tests.support.toy.run", output_dir=tmp_path)
    with pytest.raises(HpcnasError, match="does not exist"):
        hpcnas.load_results(tmp_path / "nothing")
