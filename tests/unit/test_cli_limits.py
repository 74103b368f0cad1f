"""Time limits and worker counts at their edges: ``inf`` means no limit, long limits never overflow.

The refused values (nan, negative, more than a year, absurd worker counts) are rows of the
bad-input table (``tests/unit/test_bad_inputs.py``); here are the accepted ones.
"""
from __future__ import annotations

import json
import math

import pytest

from hpcnas.cli.main import main
from hpcnas.core.errors import UsageError
from hpcnas.core.limits import MAX_NUM_WORKERS, MAX_SECONDS, time_limit
from hpcnas.evaluator.local import LocalEvaluator
from hpcnas.evaluator.simulated import SimulatedEvaluator
from hpcnas.search.master import SearchMaster

TOY = ["--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run"]


@pytest.mark.parametrize("option", ["--timeout", "--eval-timeout"])
def test_inf_means_no_limit(option, tmp_path, capsys) -> None:
    code = main(["hps", "random", *TOY, "--max-evals", "2", option, "inf", "--no-progress",
                 "--output-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 evaluations, 0 failed" in captured.out
    meta = json.loads((tmp_path / "search.json").read_text())
    assert meta["timeout"] is None  # recorded as no limit, not as a non-JSON Infinity


@pytest.mark.parametrize("option", ["--timeout", "--eval-timeout"])
def test_a_limit_of_a_year_runs(option, tmp_path, capsys) -> None:
    """Past ~24.8 days a single poll() overflows: the local evaluator waits in slices."""
    code = main(["hps", "random", *TOY, "--max-evals", "2", option, str(MAX_SECONDS), "--no-progress",
                 "--output-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err and "2 evaluations, 0 failed" in captured.out


def test_time_limit_rules() -> None:
    assert time_limit(None, "--timeout") is None
    assert time_limit(math.inf, "--timeout") is None
    assert time_limit(2.5, "--timeout") == 2.5
    assert time_limit(MAX_SECONDS, "--timeout") == MAX_SECONDS
    for bad in (0, -1.0, math.nan, -math.inf, MAX_SECONDS * 1.01, 1e300, "10", True):
        with pytest.raises(UsageError, match="--timeout"):
            time_limit(bad, "--timeout")  # type: ignore[arg-type]


def test_the_api_takes_inf_as_no_limit(tmp_path) -> None:
    import tests.support.toy as toy
    from hpcnas.search.hps.random_search import RandomSearch

    evaluator = SimulatedEvaluator(toy.run, eval_timeout=math.inf)
    assert evaluator.eval_timeout is None
    master = SearchMaster(toy.Problem, RandomSearch(toy.Problem, random_state=1), evaluator, str(tmp_path), 2,
                          timeout=math.inf, progress=False)
    assert master.timeout is None
    with pytest.raises(UsageError, match="--eval-timeout 1e\\+300 s is more than a year"):
        SimulatedEvaluator(toy.run, eval_timeout=1e300)
    with pytest.raises(UsageError, match="--timeout"):
        SearchMaster(toy.Problem, RandomSearch(toy.Problem), evaluator, str(tmp_path), 2, timeout=1e300)


def test_worker_count_bound_in_the_api() -> None:
    import tests.support.toy as toy

    with pytest.raises(UsageError, match=f"is more than {MAX_NUM_WORKERS}"):
        SimulatedEvaluator(toy.run, num_workers=MAX_NUM_WORKERS + 1)
    assert SimulatedEvaluator(toy.run, num_workers=1000).num_workers == 1000


def test_local_worker_bound_follows_the_open_file_limit(monkeypatch) -> None:
    import hpcnas.evaluator.local_resources as resources

    monkeypatch.setattr(resources, "open_file_limit", lambda needed: 100)
    with pytest.raises(UsageError, match=r"--num-workers 60 needs about \d+ open files but this process may open "
                                         r"100 \(ulimit -n\): lower --num-workers or raise ulimit -n"):
        LocalEvaluator("tests.support.toy.run", num_workers=60)
    assert LocalEvaluator("tests.support.toy.run", num_workers=4).num_workers == 4


def test_seed_rules(tmp_path) -> None:
    import tests.support.toy as toy
    from hpcnas.search.hps.random_search import RandomSearch

    with pytest.raises(UsageError, match="--seed must be an integer >= 0, got -1"):
        RandomSearch(toy.Problem, random_state=-1)
    assert len(RandomSearch(toy.Problem, random_state=2**100).ask(2)) == 2
