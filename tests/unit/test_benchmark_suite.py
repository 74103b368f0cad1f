"""The search-quality suite: problems, spaces for every method, runs and the report's arithmetic."""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.suite import problems as P
from benchmarks.suite.report import async_cost, mean_ranks, regret_table, target_checks
from benchmarks.suite.runner import run_one


@pytest.mark.parametrize("name", P.PROBLEM_NAMES)
def test_no_sampled_configuration_beats_the_stated_minimum(name):
    problem = P.get_problem(name)
    hp = problem.space.hp_problem()
    configs = hp.sample(300, rng=0)
    regrets = np.array([problem.regret(c) for c in configs])
    assert np.all(np.isfinite(regrets))
    assert regrets.min() >= -1e-9, (name, regrets.min())
    assert regrets.max() > 0  # not a constant function


@pytest.mark.parametrize("name, optimum", [
    ("branin-2", {"x0": math.pi, "x1": 2.275}),
    ("rastrigin-6", {f"x{i}": 0.0 for i in range(6)}),
    ("rosenbrock-4", {f"x{i}": 1.0 for i in range(4)}),
    ("styblinski-8", {f"x{i}": -2.903534 for i in range(8)}),
    ("levy-20", {f"x{i}": 1.0 for i in range(20)}),
    ("ellipsoid-rot-10", {f"x{i}": 0.3 for i in range(10)}),
    ("mixed-6", {"optimizer": "adam", "lr": 1e-3, "units": 128, "layers": 4, "dropout": 0.35, "activation": "relu"}),
    ("conditional-10", {"model": "mlp", "mlp_lr": 10**-3.3, "mlp_width": 128, "mlp_decay": 10**-4.5}),
])
def test_known_optima_have_zero_regret(name, optimum):
    assert abs(P.get_problem(name).regret(optimum)) < 1e-5


def test_tabular_minimum_is_a_configuration_of_the_table():
    problem = P.get_problem("nb201-cifar10")
    space = problem.space
    assert [p.size for p in space.params] == [5] * 6
    best = min((problem.regret(dict(zip([p.name for p in space.params], combo))), combo)
               for combo in _some_configs(space, 2000))
    assert best[0] >= 0.0


def _some_configs(space, n):
    rng = np.random.default_rng(0)
    for _ in range(n):
        yield [p.choices[rng.integers(p.size)] for p in space.params]


def test_every_method_space_gives_configurations_the_loss_accepts():
    optuna = pytest.importorskip("optuna")
    problem = P.get_problem("conditional-10")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        config = problem.space.optuna_config(study.ask())
        assert problem.regret(config) >= 0
        assert ("svm_c" in config) == (config["model"] == "svm")
    flat = [d.rvs(n_samples=1, random_state=1)[0] for d in problem.space.skopt_dimensions()]
    config = problem.space.from_flat(flat)
    assert problem.regret(config) >= 0 and set(config) <= {p.name for p in problem.space.params}


@pytest.mark.parametrize("method, problem, workers", [
    ("ambs", "branin-2", 1), ("ambs", "nb201-cifar10", 8), ("age", "mixed-6", 8),
    ("random", "conditional-10", 1), ("optuna-tpe", "hpolib-naval", 8), ("skopt-rf", "mixed-6", 1),
])
def test_a_run_gives_a_non_increasing_regret_curve(method, problem, workers):
    run = run_one(problem, method, seed=0, workers=workers, evals=25)
    assert run.failed == ""
    assert len(run.regret) == 25 and run.evals == 25
    assert all(b <= a for a, b in zip(run.regret, run.regret[1:]))
    assert run.regret[-1] >= 0 and run.cpu_s > 0


def test_ambs_beats_random_on_a_nas_table_with_the_same_seeds():
    ambs = [run_one("nb201-cifar100", "ambs", s, 1, 120).regret[-1] for s in range(3)]
    rnd = [run_one("nb201-cifar100", "random", s, 1, 120).regret[-1] for s in range(3)]
    assert np.median(ambs) < np.median(rnd)


def _run(problem, method, seed, regret, workers=1):
    return {"problem": problem, "method": method, "seed": seed, "workers": workers, "evals": len(regret),
            "regret": regret, "cpu_s": 0.01 * len(regret), "failed": ""}


def test_report_ranks_targets_and_async_cost():
    runs = [
        _run("p1", "ambs", 0, [3, 2, 1.0]), _run("p1", "random", 0, [3, 3, 3.0]), _run("p1", "optuna-tpe", 0, [3, 1, 0.95]),
        _run("p2", "ambs", 0, [5, 5, 5.0]), _run("p2", "random", 0, [5, 4, 4.0]), _run("p2", "optuna-tpe", 0, [5, 2, 2.0]),
        _run("p1", "ambs", 0, [3, 3, 2, 1.5, 1.0, 0.9], workers=8),
    ]
    problems, methods, table = regret_table(runs, 3, 1)
    assert problems == ["p1", "p2"] and methods == ["ambs", "random", "optuna-tpe"]
    assert table.tolist() == [[1.0, 3.0, 0.95], [5.0, 4.0, 2.0]]
    assert mean_ranks(methods, table) == {"ambs": 2.5, "random": 2.5, "optuna-tpe": 1.0}
    checks = target_checks(problems, methods, table)
    assert checks["worse_than_random"] == ["p2"]
    assert checks["within_10pct_of_best_peer"] == "1/2"  # 1.0 <= 1.1 * 0.95 on p1
    # 8 workers reach 1 worker's regret at 3 evaluations (1.0) after 5: 5/3
    assert async_cost(runs, 3, "ambs") == {"p1": pytest.approx(5 / 3)}
    # a run of ambs with another setting: a column of its own, not a peer; 1 worker's regret from ambs
    variant = dict(_run("p1", "ambs", 0, [3, 1.0, 0.9], workers=8), options={"liar_strategy": "kb"})
    problems, methods, table = regret_table(runs + [variant], 3, 8)
    assert methods == ["ambs", "ambs[liar_strategy=kb]"] and target_checks(problems, methods, table) == {}
    assert async_cost(runs + [variant], 3, "ambs[liar_strategy=kb]") == {"p1": pytest.approx(2 / 3)}


def test_report_refuses_a_file_that_is_not_suite_runs_in_one_line(tmp_path, capsys):
    import json

    from benchmarks.suite.__main__ import main

    good, other = tmp_path / "runs.jsonl", tmp_path / "asha.jsonl"
    good.write_text(json.dumps(_run("p1", "ambs", 0, [3, 2, 1.0])) + "\n")
    other.write_text(json.dumps({"problem": "p1", "searcher": "ambs", "scheduler": "asha", "regret": 0.1}) + "\n")
    assert main(["--report", str(good), "--budgets", "3", "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["--report", str(good), str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{other}: not a file of suite runs") and "multifidelity" in err[0]


def test_the_multifidelity_suite_tells_the_searcher_every_trial_and_spends_its_budget():
    from benchmarks.suite import multifidelity as MF

    problem = P.get_problem("branin-2")
    curve = MF.curve_of(problem, 10.0, 27)({"x0": 0.0, "x1": 0.0})
    assert curve(1) < curve(3) < curve(9) <= curve(27) == pytest.approx(-problem.regret({"x0": 0.0, "x1": 0.0}))
    told = []

    class Spy(MF.TellingPolicy):
        def end(self, trial_id):
            super().end(trial_id)
            told.append(trial_id)

    from hpcnas.multifidelity.policy import create_policy
    from hpcnas.multifidelity.simulate import simulate
    from hpcnas.search import get_search_class

    searcher = get_search_class("hps", "random")(problem.space.hp_problem(), random_state=0)
    inner = create_policy("asha", min_resource=1, max_resource=27, reduction_factor=3)
    asked = MF.AskedConfigs(searcher, inner, 10 * 27)
    result = simulate(Spy(inner, searcher, asked), asked, MF.curve_of(problem, 10.0, 27), num_workers=4)
    assert sorted(told) == list(range(len(result.trials))) and searcher.num_told == len(result.trials)
    assert 10 * 27 <= result.total_resource < 10 * 27 + 4 * 27  # stops starting trials at the budget
    run = MF.run_one("branin-2", "ambs", "asha", 0, 4, 5)
    assert run["regret"] is not None and run["regret"] >= 0 and run["trials"] > 5


@pytest.mark.parametrize("option, says", [
    ("portfolio={local:0.8}", "quote the whole option"),  # the shell took JSON's quotes away
    ("liar_strategy=bogus", "unknown liar strategy 'bogus'"),
    ("no_such_setting=1", "ambs has no option no_such_setting"),
])
def test_a_bad_ambs_option_is_refused_in_one_line_before_any_run(tmp_path, capsys, option, says):
    from benchmarks.suite.__main__ import main

    out = tmp_path / "runs.jsonl"
    assert main(["--problems", "branin-2", "--methods", "ambs", "--seeds", "1", "--evals", "20",
                 "--workers", "1", "--jobs", "1", "--output", str(out), "--ambs-option", option]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("--ambs-option") and says in err[0]
    assert not out.exists()
