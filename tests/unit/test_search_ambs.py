"""AMBS: options, surrogates, acquisition functions, constant liar bookkeeping."""
from __future__ import annotations

import argparse
import inspect

import numpy as np
import pytest

from hpcnas.core.errors import UsageError
from hpcnas.search.hps.ambs import AMBS
from hpcnas.search.hps.surrogate import ExtraTreesSurrogate, QuantileWarp, RandomForestSurrogate
from tests.unit._hps_support import check_valid, drive, mixed_problem, toy_objective


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kappa": -0.1}, "--kappa"),
        ({"xi": -1.0}, "--xi"),
        ({"surrogate_model": "XGB"}, "surrogate model 'XGB'"),
        ({"acq_func": "LCB"}, "acquisition function 'LCB'"),
        ({"liar_strategy": "cl_median"}, "liar strategy"),
        ({"n_jobs": 0}, "--n-jobs"),
        ({"n_jobs": 2_000_000}, "--n-jobs must be a number of processes from 1 to 4096"),
        ({"n_initial_points": -1}, "--n-initial-points"),
    ],
)
def test_bad_options_are_one_line_usage_errors(kwargs, match):
    with pytest.raises(UsageError, match=match) as info:
        AMBS(mixed_problem(), **kwargs)
    assert "\n" not in str(info.value)


def test_add_arguments_dests_are_init_keywords():
    parser = argparse.ArgumentParser()
    AMBS.add_arguments(parser)
    args = vars(parser.parse_args(["--surrogate-model", "ET", "--acq-func", "EI", "--kappa", "0.5",
                                   "--liar-strategy", "cl_mean", "--n-initial-points", "3"]))
    assert set(args) <= set(inspect.signature(AMBS.__init__).parameters)
    search = AMBS(mixed_problem(), random_state=0, **args)
    assert (search.surrogate_model, search.acq_func, search.kappa, search.liar_strategy) == ("ET", "EI", 0.5, "cl_mean")
    assert args["xi"] == 0.001 and parser.parse_args([]).kappa == 1.96


@pytest.mark.parametrize("surrogate, acq", [("RF", "UCB"), ("ET", "EI"), ("GP", "PI"), ("GP", "UCB")])
def test_surrogates_and_acquisitions_give_valid_asks(surrogate, acq):
    search = AMBS(mixed_problem(), random_state=0, surrogate_model=surrogate, acq_func=acq, n_initial_points=5)
    asked = drive(search, toy_objective, 25, fail_every=5)
    assert search._model is not None  # the model phase was reached
    for config in asked:
        check_valid(mixed_problem(), config)


def test_model_phase_beats_random_on_simple_objective():
    from hpcnas.benchmark import polynome2
    from hpcnas.benchmark.simulate import best_so_far, simulate_async
    from hpcnas.search.hps.random_search import RandomSearch

    problem = polynome2.build(2)
    ambs = [best_so_far(simulate_async(AMBS(problem, random_state=s), polynome2.run, 40, 2, s))[-1] for s in range(3)]
    rand = [best_so_far(simulate_async(RandomSearch(problem, random_state=s), polynome2.run, 40, 2, s))[-1] for s in range(3)]
    assert np.median(ambs) > np.median(rand)


def _lie_total(search: AMBS) -> float:
    trees = len(search._model._trees)
    return search._model._counts.sum() / trees


@pytest.mark.parametrize("strategy", ["cl_max", "cl_min", "cl_mean"])
def test_lies_added_at_ask_removed_at_tell(strategy):
    problem = mixed_problem(with_start=False)
    search = AMBS(problem, random_state=0, n_initial_points=4, liar_strategy=strategy)
    first = search.ask(4)
    search.tell([(c, toy_objective(c)) for c in first])
    batch = search.ask(3)  # fits the model, then three pending lies
    assert search._model is not None
    ok = np.array([toy_objective(c) for c in first])
    expected = {"cl_max": ok.min(), "cl_min": ok.max(), "cl_mean": ok.mean()}[strategy]
    lies = [entry[1] for entries in search._lies.values() for entry in entries]
    assert lies == pytest.approx([expected] * 3)
    search._flush_lies()  # lies reach the model in one batch, before the model is next used
    assert _lie_total(search) == pytest.approx(4 + 3)  # 4 fitted points + 3 lies in the leaves
    search.refit_fraction = 100.0  # no refit from here: told points go into the leaves
    search.tell([(batch[0], 1.0)])
    assert _lie_total(search) == pytest.approx(4 + 1 + 2)
    search.tell([(c, None) for c in batch[1:]])
    assert _lie_total(search) == pytest.approx(4 + 3) and not search._lies


def test_by_default_pending_points_leave_the_model_as_it_is_and_a_batch_still_spreads():
    problem = mixed_problem(with_start=False)
    search = AMBS(problem, random_state=0, n_initial_points=4)
    assert search.liar_strategy == "none"
    first = search.ask(4)
    search.tell([(c, toy_objective(c)) for c in first])
    search.refit_fraction = 100.0  # one fit: told points go into its leaves from here
    pending = search.ask(1)  # fits the model
    sums, counts = search._model._sums.copy(), search._model._counts.copy()
    pending += search.ask(1) + search.ask(6)
    search._flush_lies()
    assert np.array_equal(search._model._counts, counts) and search._model._sums == pytest.approx(sums)
    keys = search.codec.keys(search.codec.to_vectors(pending))
    assert len(set(keys)) == 8  # eight distinct points, none repeated
    search.tell([(c, toy_objective(c)) for c in pending])
    assert _lie_total(search) == pytest.approx(4 + 8) and not search._lies


@pytest.mark.parametrize("strategy, weight", [("kb", 0.0), ("blend", 0.5), ("blend", 0.8)])
def test_a_believer_lies_with_the_model_mean_and_each_lie_is_taken_back_at_tell(strategy, weight):
    search = AMBS(mixed_problem(with_start=False), random_state=0, n_initial_points=4, liar_strategy=strategy)
    search.random_share, search.blend_weight = 0.0, weight
    first = search.ask(4)
    search.tell([(c, toy_objective(c)) for c in first])
    search.refit_fraction = 100.0  # one fit: told points go into its leaves from here
    pending = [search.ask(1)[0]]  # fits the model; its lie is not in the leaves yet
    sums, counts = search._model._sums.copy(), search._model._counts.copy()
    feats = search.codec.features(search.codec.to_vectors(pending))
    mean = search._model.predict(feats)[0][0]
    worst = float(search._warp(min(toy_objective(c) for c in first)))
    assert worst < mean  # the lie: the model's mean at the point, moved `weight` towards the worst
    assert search._lies[search.codec.keys(search.codec.to_vectors(pending))[0]][0][1] == pytest.approx(
        mean + weight * (worst - mean))
    pending += search.ask(1) + search.ask(1)
    assert _lie_total(search) == pytest.approx(4 + 2)  # the first two lies reached the leaves
    values = [toy_objective(c) for c in pending]
    search.tell([(c, y) for c, y in zip(pending, values)])
    index = search._model.prepare(search.codec.features(search.codec.to_vectors(pending))).ravel()
    np.add.at(sums, index, np.repeat(search._warp(values), len(search._model._trees)))
    np.add.at(counts, index, 1.0)
    assert not search._lies and not search._unflushed
    assert search._model._sums == pytest.approx(sums) and np.array_equal(search._model._counts, counts)


def test_initial_random_points_last_until_n_initial_points_are_told_not_asked():
    search = AMBS(mixed_problem(with_start=False), random_state=0, n_initial_points=10)
    search.random_share = 0.0  # every ask after the initial points uses the model
    search.initial_counts_told = True
    first = search.ask(8)  # eight workers
    search.tell([(c, toy_objective(c)) for c in first[:5]])
    more = search.ask(2)  # ten asked, five told
    search.tell([(more[0], toy_objective(more[0]))])
    search.ask(1)
    assert search._model is None  # six told: still random
    search.tell([(c, toy_objective(c)) for c in first[5:] + more[1:]])
    search.ask(1)
    assert search._model is not None and search.last_fit_size == 10


@pytest.mark.parametrize("cls", [RandomForestSurrogate, ExtraTreesSurrogate])
def test_forest_add_equals_frozen_structure_refit(cls):
    rng = np.random.default_rng(0)
    X1, X2 = rng.random((40, 3)), rng.random((15, 3))
    f = lambda X: -np.sum((X - 0.3) ** 2, axis=1)  # noqa: E731
    model = cls(random_state=0)
    model.fit(X1, f(X1))
    before = model.predict(X2)
    model.add(X2, f(X2))
    # brute force: leaf means over all 55 points with the structure of the first fit
    X = np.vstack([X1, X2]).astype(np.float32)
    y = f(np.vstack([X1, X2]))
    test = rng.random((30, 3))
    expect = []
    for est in model.model.estimators_:
        leaves, leaf_of_test = est.tree_.apply(X), est.tree_.apply(test.astype(np.float32))
        expect.append([y[leaves == leaf].mean() for leaf in leaf_of_test])
    mean, std = model.predict(test)
    assert mean == pytest.approx(np.mean(expect, axis=0))
    assert std == pytest.approx(np.std(expect, axis=0))
    model.add(X2, f(X2), sign=-1)
    assert model.predict(X2)[0] == pytest.approx(before[0])


def test_failed_evaluations_learnt_as_worst():
    problem = mixed_problem(with_start=False)
    search = AMBS(problem, random_state=0, n_initial_points=4, liar_strategy="cl_max")
    configs = search.ask(6)
    values = [toy_objective(c) for c in configs[:4]]
    search.tell([(c, y) for c, y in zip(configs[:4], values)] + [(c, None) for c in configs[4:]])
    search.ask(1)  # refit
    failed_feats = search.codec.features(search.codec.to_vectors(configs[4:]))
    mean, _ = search._model.predict(failed_feats)
    assert np.all(mean <= search._warp(max(values)))  # forests learn warped objectives
    search._flush_lies()  # the lie of the point just asked
    assert search._model._counts.sum() / len(search._model._trees) == pytest.approx(6 + 1)


def test_quantile_warp_is_monotone_rank_based_and_extends_past_the_ends():
    ref = np.array([-1000.0, -50.0, -3.0, -2.0, -1.0])
    warp = QuantileWarp(ref)
    scores = warp(ref)
    assert np.all(np.diff(scores) > 0) and scores.mean() == pytest.approx(0.0)
    # ranks, not magnitudes: -1000 -> -50 is one step, like -2 -> -1
    assert scores[1] - scores[0] == pytest.approx(scores[4] - scores[3])
    assert warp([0.0])[0] > scores[-1] and warp([-5000.0])[0] < scores[0]
    assert scores[2] < warp([-2.5])[0] < scores[3]


def test_trust_region_center_recombines_float_columns_of_best_points():
    from hpcnas.benchmark import polynome2

    search = AMBS(polynome2.build(2), random_state=0, n_initial_points=0)
    configs = [{"x0": x, "x1": x} for x in (1.0, -1.0, 3.0, -4.0, 9.0, 10.0)]
    search.tell([(c, polynome2.run(c)) for c in configs])
    center = search.codec.to_config(search._center())
    # weighted mean of the 5 best (+-1 first): much closer to the optimum than the best
    assert abs(center["x0"]) < 0.6 and center["x0"] == pytest.approx(center["x1"])
    mixed = AMBS(mixed_problem(with_start=False), random_state=0, n_initial_points=0)
    points = mixed.ask(8)
    mixed.tell([(c, toy_objective(c)) for c in points])
    check_valid(mixed_problem(), mixed.codec.to_config(mixed._center()))


def test_every_lie_is_taken_back_when_its_point_is_told_in_a_space_of_log_integers():
    from hpcnas.problem import HpProblem

    problem = HpProblem()
    problem.add_hyperparameter((8, 512, "log-uniform"), "units")
    problem.add_hyperparameter((1e-4, 1.0, "log-uniform"), "lr")
    search = AMBS(problem, random_state=0, n_initial_points=5)
    for _ in range(30):
        config = search.ask(1)[0]
        search.tell([(config, -abs(np.log2(config["units"]) - 6) - abs(np.log10(config["lr"]) + 2))])
    assert search._lies == {} and not search._local_picks


@pytest.mark.parametrize("share, low, high", [(0.0, 200, 200), (0.1, 160, 195), (1.0, 0, 0)])
def test_a_share_of_the_asked_points_is_random_and_not_screened_by_the_model(share, low, high):
    from hpcnas.benchmark import polynome2

    search = type("Share", (AMBS,), {"random_share": share})(polynome2.build(2), random_state=0, n_initial_points=5)
    search.tell([(c, polynome2.run(c)) for c in search.ask(5)])
    screened = []
    by_model = search._propose_by_model
    search._propose_by_model = lambda n: screened.append(n) or by_model(n)
    for _ in range(200):
        config = search.ask(1)[0]
        search.tell([(config, polynome2.run(config))])
    assert low <= sum(screened) <= high


def test_the_step_size_follows_the_one_fifth_rule_and_counts_its_gains_and_restarts():
    search = AMBS(mixed_problem(), random_state=0)
    r0 = search._radius
    search._adapt_radius(np.array([1.0, -1.0, -1.0, -1.0, -1.0]), 0.0)  # one gain in five: steady
    assert search._radius == pytest.approx(r0) and search.num_region_gains == 1
    shrinks = int(np.ceil(np.log(r0 / search.radius_min) / np.log(search.radius_grow ** 0.25)))
    search._adapt_radius(np.full(shrinks - 1, -1.0), 1.0)
    assert search.radius_min <= search._radius < r0 and search.num_radius_restarts == 0
    search._adapt_radius(np.array([np.nan, -1.0]), 1.0)  # a failed evaluation is no gain either
    assert search._radius == pytest.approx(search.radius_init * search.radius_grow ** -0.25)
    assert search.num_radius_restarts == 1 and search.num_region_gains == 1
