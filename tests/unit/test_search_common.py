"""Contract tests run on every registered HPS search (``search_names("hps")``: random, ambs, age and
the multi-fidelity ones, whose searcher answers ask and tell)."""
from __future__ import annotations

import json

import pytest

from hpcnas.search import get_search_class, search_names
from tests.unit._hps_support import check_valid, drive, mixed_problem, toy_objective

SMALL = {"random": {}, "ambs": {"n_initial_points": 5}, "age": {"population_size": 8, "sample_size": 3},
         # the multi-fidelity searches with their default searcher (ambs), as small
         **{mf: {"n_initial_points": 5} for mf in ("asha", "hyperband", "pasha", "sh")}}
#: every registered HPS search of hpcnas (not the toy ones other test modules register), with the
#: small settings above where it has some
HPS = [n for n in search_names("hps") if get_search_class("hps", n).__module__.startswith("hpcnas.")]


def make(name: str, seed: int = 0, **kw):
    return get_search_class("hps", name)(mixed_problem(), random_state=seed, **{**SMALL.get(name, {}), **kw})


@pytest.mark.parametrize("name", HPS)
def test_starting_point_first_and_valid_asks(name):
    search = make(name)
    asked = drive(search, toy_objective, 40)
    assert asked[0] == mixed_problem().starting_points[0]
    for config in asked:
        check_valid(mixed_problem(), config)
        json.dumps(config)  # plain JSON-safe values
    assert search.num_told == 40 and search.num_asked == len(asked)


@pytest.mark.parametrize("name", HPS)
def test_seeded_reproducible(name):
    a = drive(make(name, seed=3), toy_objective, 30)
    b = drive(make(name, seed=3), toy_objective, 30)
    c = drive(make(name, seed=4), toy_objective, 30)
    assert a == b
    assert a != c


@pytest.mark.parametrize("name", HPS)
def test_distinct_asks_while_pending(name):
    search = make(name)
    batch = search.ask(12)
    keys = {json.dumps(c, sort_keys=True) for c in batch}
    assert len(keys) == 12
    asked = drive(search, toy_objective, 30, workers=6)
    assert len({json.dumps(c, sort_keys=True) for c in asked}) == len(asked)


@pytest.mark.parametrize("name", HPS)
def test_failures_told_as_none(name):
    search = make(name)
    asked = drive(search, toy_objective, 40, fail_every=3)
    assert search.num_told == 40
    assert sum(y is None for _, y in search.history) == 13
    assert search.best is not None and search.best[1] is not None
    for config in asked:
        check_valid(mixed_problem(), config)


@pytest.mark.parametrize("name", HPS)
def test_all_failures_then_success(name):
    search = make(name)
    configs = search.ask(6)
    search.tell([(c, None) for c in configs])  # nothing succeeded yet
    more = search.ask(3)
    assert len(more) == 3
    search.tell([(c, toy_objective(c)) for c in more])
    assert len(search.ask(2)) == 2


@pytest.mark.parametrize("name", HPS)
def test_tell_foreign_configs_resume(name):
    """Resume: results the search never asked for are accepted and not proposed again."""
    problem = mixed_problem(with_start=False)
    old = problem.sample(20, rng=7)
    search = get_search_class("hps", name)(problem, random_state=1, **SMALL.get(name, {}))
    search.tell([(c, toy_objective(c)) for c in old])
    new = search.ask(10)
    old_keys = {json.dumps(c, sort_keys=True) for c in old}
    assert not old_keys & {json.dumps(c, sort_keys=True) for c in new}


def test_tiny_discrete_space_exhausted_still_answers():
    from hpcnas.problem import HpProblem

    p = HpProblem()
    p.add_hyperparameter(["a", "b"], "c")
    for name in HPS:
        kw = {"age": {"population_size": 2, "sample_size": 1}}.get(name, {})
        search = get_search_class("hps", name)(p, random_state=0, **kw)
        first = search.ask(2)
        assert sorted(c["c"] for c in first) == ["a", "b"]
        search.tell([(c, 1.0) for c in first])
        assert len(search.ask(3)) == 3  # duplicates only once the space is exhausted


#: the searches with a module of their own in hpcnas.search.hps (the multi-fidelity ones share one)
OWN_MODULE = [n for n in HPS if get_search_class("hps", n).__module__.startswith("hpcnas.search.hps.")]


def test_every_registered_search_is_under_contract():
    assert {"random", "ambs", "age", "asha", "hyperband", "pasha", "sh"} <= set(HPS)
    assert {"random", "ambs", "age"} <= set(OWN_MODULE)


@pytest.mark.parametrize("name", OWN_MODULE)
def test_module_entry_point_ends_with_module_main(name):
    import importlib
    import inspect

    module = importlib.import_module(get_search_class("hps", name).__module__)
    source = inspect.getsource(module)
    assert f'module_main("hps", "{name}")' in source


def test_unknown_option_is_usage_error():
    from hpcnas.core.errors import UsageError

    with pytest.raises(UsageError, match="unknown option"):
        get_search_class("hps", "random")(mixed_problem(), bogus=1)
