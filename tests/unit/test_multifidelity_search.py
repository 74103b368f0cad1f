"""Multi-fidelity searches through the real CLI, master loop and local evaluator."""
from __future__ import annotations

import math
import os
import time

import pandas as pd
import pytest

from hpcnas.cli.main import main
from hpcnas.evaluator.base import create_evaluator
from hpcnas.multifidelity import report
from hpcnas.multifidelity.protocol import ADDRESS_ENV
from hpcnas.problem import HpProblem
from hpcnas.search.base import get_search_class

Problem = HpProblem()
Problem.add_hyperparameter((0.0, 1.0), "x")

HERE = "tests.unit.test_multifidelity_search"


def run(config):
    """Learning curve ``x * (1 - exp(-epoch / 3))`` over 9 epochs (better x is better everywhere)."""
    value = 0.0
    for epoch in range(1, 10):
        time.sleep(0.01)
        value = config["x"] * (1 - math.exp(-epoch / 3))
        report(epoch, value)
    return value


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    yield


def test_unknown_searcher_and_scheduler_as_searcher_are_usage_errors(capsys):
    code = main(["hps", "asha", "--problem", f"{HERE}.Problem", "--run", f"{HERE}.run", "--searcher", "nope"])
    assert code == 2
    assert "unknown hps search 'nope'" in capsys.readouterr().err
    code = main(["hps", "asha", "--problem", f"{HERE}.Problem", "--run", f"{HERE}.run", "--searcher", "pasha"])
    assert code == 2
    assert "is a scheduler" in capsys.readouterr().err


@pytest.mark.parametrize("searcher", ["random", "ambs"])
def test_asha_cli_stops_weak_trials_early_with_the_local_evaluator(tmp_path, searcher):
    out = tmp_path / "asha"
    code = main([
        "hps", "asha", "--searcher", searcher, "--problem", f"{HERE}.Problem", "--run", f"{HERE}.run",
        "--max-evals", "12", "--num-workers", "2", "--seed", "1", "--max-resource", "9",
        "--output-dir", str(out), "--no-progress",
    ])
    assert code == 0
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 12
    assert set(df.status) <= {"DONE", "STOPPED"}
    stopped = df[df.status == "STOPPED"]
    assert len(stopped) >= 3, df[["p:x", "status", "objective"]]
    assert stopped.objective.notna().all()  # the last reported objective is kept
    # a trial that ran to the end is never worse at 9 epochs than every stopped trial's x
    assert df[df.status == "DONE"]["p:x"].max() >= stopped["p:x"].max()


def test_search_object_tells_stopped_trials_their_last_objective(tmp_path):
    from hpcnas.search.master import SearchMaster

    search = get_search_class("hps", "pasha")(Problem, random_state=3, max_resource=9, epsilon=0.0)
    try:
        assert search.evaluation_env()[ADDRESS_ENV] == search.server.address and ADDRESS_ENV not in os.environ
        with create_evaluator("local", f"{HERE}.run", num_workers=2) as evaluator:
            master = SearchMaster(Problem, search, evaluator, str(tmp_path), max_evals=10, progress=False)
            df = master.run()
        finished = [r for r in search.history if r[1] is not None]
        assert len(search.history) == 10 and len(finished) == 10  # stopped trials told, not failed
        assert search.policy.resource_used() < 10 * 9
        config, objective = search.best
        rung = search.policy.rungs[search.policy.top_rung]
        assert objective == pytest.approx(config["x"] * (1 - math.exp(-rung / 3)))
        # every evaluation carried its reports back through the local evaluator
        assert (df.status.isin(["DONE", "STOPPED"])).all()
    finally:
        search.close()
    assert ADDRESS_ENV not in os.environ


def run_seeing_env(config):
    """The curve of :func:`run` at rungs 1 and 3 only (every report is a request to the scheduler);
    says whether this process's environment names a scheduler."""
    value = 0.0
    for epoch in (1, 3):
        value = config["x"] * (1 - math.exp(-epoch / 3))
        report(epoch, value)
    return {"objective": value, "duration": 1.0, "env_has_scheduler": ADDRESS_ENV in os.environ}


def test_the_master_hands_the_search_env_to_an_evaluator_built_before_the_search(tmp_path):
    """No build order and no os.environ: the master passes ``evaluation_env()`` to the evaluator."""
    from hpcnas.search.master import SearchMaster

    before = dict(os.environ)
    with create_evaluator("simulated", f"{HERE}.run_seeing_env", num_workers=3) as evaluator:
        search = get_search_class("hps", "asha")(Problem, random_state=1, searcher="random", max_resource=3)
        assert dict(os.environ) == before  # building the search changes nothing in this process
        assert set(search.evaluation_env()) == {ADDRESS_ENV, "HPCNAS_MF_AUTHKEY"}
        df = SearchMaster(Problem, search, evaluator, str(tmp_path), max_evals=4, progress=False).run()
    assert dict(os.environ) == before
    assert search.server is not None and search.server.closed and search.evaluation_env() == {}  # closed by the master
    assert (df["status"] == "STOPPED").sum() >= 1, df[["p:x", "status"]]  # the scheduler was reached
    assert not df["m:env_has_scheduler"].any()


def test_local_evaluator_carries_reports_into_eval_results():
    with create_evaluator("local", f"{HERE}.run", num_workers=1) as evaluator:
        evaluator.submit([{"x": 0.5}])
        results = []
        deadline = time.time() + 30
        while not results and time.time() < deadline:
            results = evaluator.gather(timeout=5)
    (result,) = results
    assert result.status == "DONE"
    assert [s for s, _ in result.reports] == list(range(1, 10))
    assert result.reports[-1][1] == pytest.approx(result.objective)
    assert "reports" not in result.metadata


@pytest.mark.parametrize("name", ["asha", "pasha", "sh", "hyperband"])
def test_multifidelity_searches_keep_the_search_contract(name):
    def make():
        return get_search_class("hps", name)(Problem, random_state=5, searcher="random", max_resource=9)

    first, second = make(), make()
    try:
        asked = first.ask(4)
        assert asked == second.ask(4)  # seeded
        assert len({c["x"] for c in asked}) == 4
        first.tell([({"x": 0.123}, 0.5), (asked[0], None)])  # a config it never asked, and a failure
        assert first.num_told == 2 and first.searcher.num_told == 2
        assert first.best == ({"x": 0.123}, 0.5)  # no reports yet: the searcher's history decides
        assert first.policy.name == name
    finally:
        first.close()
        second.close()
    assert ADDRESS_ENV not in os.environ


def test_bad_scheduler_options_are_usage_errors():
    from hpcnas.core.errors import UsageError

    with pytest.raises(UsageError, match="--reduction-factor must be > 1"):
        get_search_class("hps", "asha")(Problem, reduction_factor=1)
    with pytest.raises(UsageError, match="unknown option"):
        get_search_class("hps", "asha")(Problem, cohort_size=3)
    assert ADDRESS_ENV not in os.environ


def test_searcher_options_reach_the_searcher_through_the_cli(capsys):
    """BOHB-like ``asha --searcher ambs --kappa ... --surrogate-model ET``: the options are AMBS's."""
    from hpcnas.cli.search_cmd import parse

    argv = ["--problem", f"{HERE}.Problem", "--run", f"{HERE}.run", "--searcher", "ambs", "--kappa", "0.25",
            "--surrogate-model", "ET", "--max-resource", "9"]
    args, search_dests, _ = parse("hps", "asha", argv)
    assert args.kappa == 0.25 and args.surrogate_model == "ET" and "kappa" in search_dests
    search = get_search_class("hps", "asha")(Problem, random_state=0, searcher="ambs", kappa=0.25,
                                             surrogate_model="ET", max_resource=9)
    try:
        assert search.searcher.kappa == 0.25 and search.searcher.surrogate_model == "ET"
    finally:
        search.close()
    # an option of another searcher is refused by the one in use, in one line
    code = main(["hps", "asha", "--problem", f"{HERE}.Problem", "--run", f"{HERE}.run", "--searcher", "random",
                 "--kappa", "1"])
    assert code == 2 and "unrecognized arguments: --kappa" in capsys.readouterr().err
    with pytest.raises(Exception, match="unknown option.*'random'.*kappa"):
        get_search_class("hps", "asha")(Problem, random_state=0, searcher="random", kappa=1.0)


def test_resume_rebuilds_the_rungs_from_the_recorded_learning_curves(tmp_path):
    """results.csv keeps every evaluation's reports; a resumed ASHA judges new trials against them."""
    from hpcnas.evaluator.base import EvalResult
    from hpcnas.search.results_store import ResultsStore

    store = ResultsStore(str(tmp_path), Problem)
    store.append([EvalResult(job_id=f"j{i}", config={"x": x}, objective=x, reports=[(1.0, x), (3.0, x + 0.01)])
                  for i, x in enumerate((0.9, 0.8, 0.7))])
    store.close()
    recorded = ResultsStore(str(tmp_path), Problem).load()
    assert [r.reports for r in recorded][0] == [(1.0, 0.9), (3.0, pytest.approx(0.91))]

    def first_decision(restore: bool) -> str:
        search = get_search_class("hps", "asha")(Problem, random_state=0, max_resource=9)
        try:
            if restore:
                search.restore(recorded)
            return search.server.handle("report", ("new", {"x": 0.1}, 1.0, 0.1))
        finally:
            search.close()

    assert first_decision(restore=False) == "continue"  # alone at rung 1: promoted
    assert first_decision(restore=True) == "stop"  # below the top third of the 3 restored trials


def test_results_csv_has_the_reports_column_after_an_asha_search(tmp_path):
    out = tmp_path / "asha"
    args = ["hps", "asha", "--problem", f"{HERE}.Problem", "--run", f"{HERE}.run", "--num-workers", "2",
            "--seed", "1", "--max-resource", "9", "--output-dir", str(out), "--no-progress"]
    assert main([*args, "--max-evals", "4"]) == 0
    assert main([*args, "--max-evals", "6"]) == 0  # resumed: restore() replays the 4 curves
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 6 and df["reports"].notna().all()
    import json

    curves = [json.loads(text) for text in df["reports"]]
    assert all(1 <= len(c) <= 9 and c[0][0] == 1 for c in curves)
    assert all(c[-1][1] == pytest.approx(y) for c, y in zip(curves, df["objective"]))


def test_the_default_searcher_is_the_one_chosen_on_the_suite():
    from hpcnas.multifidelity.search import DEFAULT_SEARCHER
    from hpcnas.search.hps.ambs import AMBS

    search = get_search_class("hps", "asha")(Problem, random_state=0)
    try:
        assert DEFAULT_SEARCHER == "ambs" and isinstance(search.searcher, AMBS)
    finally:
        search.close()
