"""AMBS with many pending evaluations: the work per ask, tell and refit does not grow with them.

Counts, not timings: the rows a refit learns from, the model updates per batch, the candidate
screens per batch ask, the points a GP optimises its kernel on.
"""
from __future__ import annotations

import numpy as np
import pytest

from hpcnas.benchmark import polynome2
from hpcnas.search.hps import surrogate as surrogates
from hpcnas.search.hps.ambs import AMBS

PROBLEM = polynome2.build(3)


def _told(search: AMBS, n: int, seed: int = 1) -> None:
    configs = PROBLEM.sample(n, rng=seed)
    search.tell([(c, polynome2.run(c)) for c in configs])


class _CountingTraversals:
    """Wraps a forest's ``prepare`` (the tree traversals) and counts the calls and the rows."""

    def __init__(self, search: AMBS) -> None:
        self.calls = self.rows = 0
        model = search._model
        original = model.prepare

        def counted(X):
            self.calls += 1
            self.rows += len(X)
            return original(X)

        model.prepare = counted


@pytest.mark.parametrize("surrogate", ["RF", "ET"])
def test_a_refit_learns_from_the_told_points_only_and_re_adds_every_lie_in_one_update(surrogate) -> None:
    search = AMBS(PROBLEM, random_state=0, surrogate_model=surrogate, n_initial_points=5, liar_strategy="cl_max")
    _told(search, 30)
    pending = search.ask(200)  # 200 lies
    assert search.num_refits == 1 and search.last_fit_size == 30
    search._flush_lies()
    trees = len(search._model._trees)
    assert search._model._counts.sum() / trees == pytest.approx(30 + 200)  # fitted points + lies
    fits: list[int] = []
    original = type(search._model).fit
    type(search._model).fit, search._n_fit = (lambda self, X, y: (fits.append(len(X)), original(self, X, y))), 0
    try:
        search._refit()
    finally:
        type(search._model).fit = original
    assert fits == [30]  # the 200 lies are not fitted on ...
    assert search._model._counts.sum() / trees == pytest.approx(30 + 200)  # ... but are in the new leaves
    assert len(pending) == 200


def test_lies_and_told_points_reuse_the_leaves_of_their_screen() -> None:
    """A batch ask traverses the trees once per screen of candidates; the lasting lies of the asked
    points, their removal and the told points reuse the leaves found then (no traversal per point)."""
    for k in (8, 128):
        search = AMBS(PROBLEM, random_state=0, n_initial_points=5)
        search.random_share = 0.0
        _told(search, 30)
        search.tell([(c, polynome2.run(c)) for c in search.ask(1)])  # fits the model
        search.refit_fraction = 1e9  # no refit from here
        counter = _CountingTraversals(search)
        asked = search.ask(k)
        search.tell([(c, polynome2.run(c)) for c in asked])
        screens = -(-k // search.batch_chunk)
        assert counter.calls == screens and counter.rows == screens * 4 * search.batch_chunk


def test_a_batch_ask_screens_one_candidate_set_per_chunk_of_picks(monkeypatch) -> None:
    search = AMBS(PROBLEM, random_state=0, n_initial_points=5)
    search.random_share = 0.0
    _told(search, 30)
    screens: list[int] = []
    original = search._candidates
    monkeypatch.setattr(search, "_candidates", lambda count: (screens.append(count), original(count))[1])
    assert len(search.ask(320)) == 320
    # 320 picks in chunks of 32: 10 screens of 128 candidates (4 per pick), not 1 screen of 1,280
    # scored 320 times
    assert screens == [4 * search.batch_chunk] * (320 // search.batch_chunk)


def test_the_gp_optimises_its_kernel_on_a_subset_and_conditions_on_bounded_extras(monkeypatch) -> None:
    monkeypatch.setattr(surrogates.GaussianProcessSurrogate, "fit_points", 20)
    monkeypatch.setattr(surrogates.GaussianProcessSurrogate, "max_points", 40)
    monkeypatch.setattr(surrogates.GaussianProcessSurrogate, "max_extra", 8)
    monkeypatch.setattr(surrogates.GaussianProcessSurrogate, "n_restarts_optimizer", 0)
    search = AMBS(PROBLEM, random_state=0, surrogate_model="GP", n_initial_points=5, liar_strategy="cl_max")
    _told(search, 60)
    asked = search.ask(4)
    model = search._model
    assert model.fit_size == 20 and len(model._base[0]) == 40  # best 20 for the kernel, best 40 posterior
    search.ask(30)
    search._flush_lies()
    sizes: list[int] = []
    original = surrogates.GaussianProcessSurrogate.predict_prepared
    model.add(np.zeros((1, 3)), [0.0])
    import sklearn.gaussian_process as gp

    fit = gp.GaussianProcessRegressor.fit
    monkeypatch.setattr(gp.GaussianProcessRegressor, "fit", lambda self, X, y: (sizes.append(len(X)), fit(self, X, y))[1])
    original(model, np.zeros((2, 3)))
    assert len(model._extra) > 8 and sizes == [40 + 8]  # 34 lies and one extra point, 8 conditioned on
    assert len(asked) == 4


def _first_model(search: AMBS) -> None:
    """Ask until the search has its first model (fitted once the warm-up fit has ended)."""
    for _ in range(3):
        if search._fitting is not None:
            search._fitting._thread.join(60)
        search.ask(1)
        if search._model is not None:
            return
    raise AssertionError("no model after the warm-up fit and the first fit")


def test_asks_are_random_and_do_not_wait_while_the_model_library_is_imported(monkeypatch) -> None:
    import threading

    search = AMBS(PROBLEM, random_state=0, n_initial_points=5)
    release, build = threading.Event(), search._build
    monkeypatch.setattr(search, "_build", lambda *a: (release.wait(60), build(*a))[1])
    search.fit_in_background()  # the warm-up fit (the model library's import) starts at once
    _told(search, 30)
    assert len(search.ask(3)) == 3 and search._model is None  # answered while the warm-up waits
    assert len(search.ask(2)) == 2 and search._model is None  # 5 random points: n_initial_points
    waited = threading.Timer(0.5, release.set)  # the next ask waits for the import
    waited.start()
    search.ask(1)
    assert release.is_set() and search._model is not None
    _first_model(search)
    assert search.num_refits == 1 and search.last_fit_size == 30  # then fitted in the foreground (quick)
    assert search.num_background_fits == 0  # the warm-up is not counted as a fit
    search.close()


def test_a_background_refit_does_not_stall_asks_and_is_installed_when_done(monkeypatch) -> None:
    import threading

    search = AMBS(PROBLEM, random_state=0, n_initial_points=5, liar_strategy="cl_max")
    search.random_share = 0.0
    search.fit_in_background()
    _told(search, 30)
    _first_model(search)
    assert search.num_refits == 1 and search.num_background_fits == 0  # the first fit: in the foreground
    release, build = threading.Event(), search._build
    monkeypatch.setattr(search, "_build", lambda *a: (release.wait(60), build(*a))[1])
    _told(search, 10, seed=2)  # a refit is due
    old = search._model
    assert len(search.ask(5)) == 5  # answered from the old model while the fit waits
    assert search.num_background_fits == 1 and search._model is old and search.num_refits == 1
    _told(search, 3, seed=3)  # told meanwhile: learnt by the old model, re-added to the new one
    release.set()
    search._fitting._thread.join(60)
    search.ask(1)
    assert search.num_refits == 2 and search.last_fit_size == 40 and search._model is not old
    search._flush_lies()
    trees = len(search._model._trees)
    pending = sum(len(v) for v in search._lies.values())
    assert search._model._counts.sum() / trees == pytest.approx(43 + pending)
    search.close()


def test_the_master_fits_in_the_background_on_a_real_clock_only(tmp_path) -> None:
    from hpcnas.evaluator.base import Evaluator
    from hpcnas.evaluator.simulated import SimulatedEvaluator
    from hpcnas.search.master import SearchMaster

    class RealClock(SimulatedEvaluator):
        clock = Evaluator.clock

    for cls, expected in ((SimulatedEvaluator, False), (RealClock, True)):
        search = AMBS(PROBLEM, random_state=0, n_initial_points=3)
        evaluator = cls(polynome2.run, num_workers=2, default_duration=1.0)
        SearchMaster(PROBLEM, search, evaluator, str(tmp_path / cls.__name__), 8, progress=False).run()
        search.close()
        assert search._background is expected
        if expected:  # every fit in the background (8 instant evaluations may end before the first)
            assert search.num_refits <= search.num_background_fits
        else:
            assert search.num_background_fits == 0 and search.num_refits >= 1
