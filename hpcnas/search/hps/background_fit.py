"""A surrogate fit in a background thread, so that asks go on from the last fitted model.

On a real clock a refit of AMBS (0.3--3 s for a forest) would stall every ask behind it while
workers sit idle. :class:`BackgroundFit` runs the fit in a daemon thread instead (scikit-learn
builds trees and solves the GP's linear algebra without the GIL); the search keeps asking from
the model it has and installs the new one at its first call after the fit ended. Only the
thread touches the new model until then; it receives copies of the training data.

Asks then depend on how long a fit takes, so a search is reproducible only with synchronous
fits: the search master turns background fits on for evaluators on the real clock (local,
Ray, Balsam), never for the simulated one.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np


class BackgroundFit:
    """One fit ``build() -> result`` running in a daemon thread."""

    def __init__(self, build: Callable[[], Any], tag: Any = None) -> None:
        self.tag = tag  # what the caller needs with the result (e.g. the number of points fitted)
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(build,), name="hpcnas-surrogate-fit", daemon=True)
        self._thread.start()

    def _run(self, build: Callable[[], Any]) -> None:
        try:
            self._result = build()
        except BaseException as err:  # noqa: BLE001 - re-raised in the search's thread by result()
            self._error = err

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> Any:
        """Wait for the fit; its result (or its exception, raised here)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


class BackgroundFitting:
    """AMBS's model refresh (a mixin): synchronous fits, or background fits on a real clock.

    The search provides ``_build(X, y, seed)`` (a fitted model and its warp, pure),
    ``_install(model, warp, n_fit)``, ``_refit()``, ``_refit_due()`` and ``_training_data()``.
    """

    codec: Any
    n_initial_points: int
    num_background_fits: int
    _background: bool
    _fitting: BackgroundFit | None
    _model: Any
    _random_while_warming: int
    _build: Callable[..., Any]
    _install: Callable[..., None]
    _refit: Callable[[], None]
    _refit_due: Callable[[], bool]
    _training_data: Callable[[], Any]

    def fit_in_background(self, enabled: bool = True) -> None:
        """Refit in a background thread and ask from the last fitted model meanwhile (the search
        master turns this on for evaluators on the real clock; :mod:`~hpcnas.search.hps.background_fit`).
        A throwaway fit on two points starts at once, so that importing the model's library (1-3 s
        of scikit-learn) is over before the first fit; asks until then are random points, at most
        ``n_initial_points`` of them beyond the initial ones (then an ask waits for the import)."""
        self._background = enabled
        if enabled and self._model is None and self._fitting is None:
            dummy = np.zeros((2, self.codec.num_features)), np.array([0.0, 1.0])
            self._fitting = BackgroundFit(lambda: self._build(*dummy, 0), tag=None)

    def _refresh_model(self) -> None:
        """Install a finished background fit; fit when no model exists (unless the warm-up fit of
        :meth:`fit_in_background` still runs); else start a background fit when one is due."""
        if self._fitting is not None and self._fitting.done:
            fitting, self._fitting = self._fitting, None
            model, warp = fitting.result()
            if fitting.tag is not None:  # (None: the warm-up fit of fit_in_background)
                self._install(model, warp, fitting.tag)
        if self._model is None:
            if self._fitting is not None and self._random_while_warming >= self.n_initial_points:
                self._fitting.result()  # enough random points: wait for the import (the warm-up fit)
                self._fitting = None
            if self._fitting is None:  # the first fit, on a few points: quick once the library is in
                self._refit()
        elif self._refit_due() and self._fitting is None:
            if not self._background:
                self._refit()
                return
            X, y, seed = self._training_data()
            self.num_background_fits += 1
            X = X.copy()  # the thread gets its own copy of the training data
            self._fitting = BackgroundFit(lambda: self._build(X, y, seed), tag=len(y))

    def close(self) -> None:
        """Wait for a fit still running, then the search's own close."""
        if self._fitting is not None:
            self._fitting.result()
            self._fitting = None
        super().close()  # type: ignore[misc]  # the search class after this mixin
