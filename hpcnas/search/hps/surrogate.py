"""Surrogate models of the objective for model-based search (AMBS, AgEBO).

Every surrogate follows one contract (:class:`Surrogate`):

* ``fit(X, y)`` rebuilds the model from scratch (the expensive step; callers amortise it),
* ``add(X, y, sign=+1)`` adds points to the fitted model *without* rebuilding it, and
  ``sign=-1`` removes points added that way (constant-liar lies are added at ask time and
  removed when the real result arrives),
* ``prepare(X)`` precomputes what prediction needs for a candidate matrix, so that
  ``predict_prepared(p)`` after each ``add`` is cheap; ``predict(X)`` does both.
  Predictions are ``(mean, std)`` arrays, in the units of ``y``.

Forests (``RF`` = scikit-learn random forest, ``ET`` = extremely randomised trees) keep the
split structure of the last ``fit`` and store, per tree leaf, the sum and count of *all* points
that fall into it (fitted points, points added since, and lies). Adding a point therefore
updates one leaf per tree -- exactly what refitting the leaf values with a frozen tree
structure would give -- at O(trees x depth) cost. The mean is the average of the trees' leaf
means, the std their spread across trees. Above ``max_samples`` points each tree is grown
on a bootstrap sample of that size, so a refit costs O(trees x max_samples log max_samples)
however many points were told, while the leaf statistics still use every point.

``GP`` is a scikit-learn Gaussian process (constant x Matern 5/2 with one length scale per
feature, plus white noise, ``normalize_y``), a *subset-of-data* GP at scale: ``fit`` optimises
the kernel on at most ``fit_points`` (256) points, then conditions on at most ``max_points``
(1,000) with that kernel fixed -- the best points in both cases (the region the acquisition
works in). ``add`` conditions on extra points (told points and lies) with the kernel fixed;
only the ``max_extra`` (128) most recent of them are conditioned on, so a prediction costs
O((max_points + max_extra)^3) at most, whatever the numbers of told and pending points. Up to
256 told points it is the exact GP of all of them; from 256 on the kernel is learnt from the
best 256, and from 1,000 on the posterior uses the best 1,000 (plus the points told since).
"""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from scipy.special import ndtri

SURROGATES: dict[str, type["Surrogate"]] = {}


def register_surrogate(name: str):
    def deco(cls: type[Surrogate]) -> type[Surrogate]:
        SURROGATES[name] = cls
        return cls

    return deco


class Surrogate(ABC):
    """A regression model with uncertainty, refitted rarely and updated cheaply."""

    def __init__(self, random_state: int | None = None, n_jobs: int = 1) -> None:
        self.random_state = random_state
        self.n_jobs = n_jobs

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Rebuild the model from all points (``y`` finite)."""

    @abstractmethod
    def add(self, X: np.ndarray, y: np.ndarray, sign: int = 1) -> None:
        """Add (``sign=1``) or remove (``sign=-1``) points without rebuilding."""

    def prepare(self, X: np.ndarray) -> Any:
        return X

    def add_prepared(self, prepared: Any, y: Any, sign: int = 1) -> None:
        """:meth:`add` for points already given to :meth:`prepare` (rows of its result)."""
        self.add(prepared, np.asarray(y, dtype=float), sign)

    @abstractmethod
    def predict_prepared(self, prepared: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` for the points given to :meth:`prepare`."""

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.predict_prepared(self.prepare(X))


class _ForestSurrogate(Surrogate):
    """Tree ensemble with per-leaf running statistics (see the module docstring)."""

    n_estimators = 64
    min_samples_leaf = 1
    max_features: float | str = 1.0
    max_samples = 1000

    def _make(self, n: int) -> Any:
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=float)
        self.model = self._make(len(X))
        self.model.fit(X, y)
        self._trees = [est.tree_ for est in self.model.estimators_]
        sizes = np.array([t.node_count for t in self._trees])
        self._offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        total = int(sizes.sum())
        index = self.prepare(X).ravel()
        weights = np.repeat(y, len(self._trees))
        self._sums = np.bincount(index, weights=weights, minlength=total)
        self._counts = np.bincount(index, minlength=total).astype(float)

    def prepare(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        leaves = np.empty((len(X), len(self._trees)), dtype=np.intp)
        for t, tree in enumerate(self._trees):
            leaves[:, t] = tree.apply(X)
        return leaves + self._offsets[None, :]

    def add(self, X: np.ndarray, y: np.ndarray, sign: int = 1) -> None:
        self.add_prepared(self.prepare(X), y, sign)

    def add_prepared(self, index: np.ndarray, y: Any, sign: int = 1) -> None:
        np.add.at(self._sums, index.ravel(), sign * np.repeat(np.asarray(y, dtype=float), index.shape[1]))
        np.add.at(self._counts, index.ravel(), float(sign))

    def predict_prepared(self, prepared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = self._sums[prepared] / np.maximum(self._counts[prepared], 1.0)
        return values.mean(axis=1), values.std(axis=1)


@register_surrogate("RF")
class RandomForestSurrogate(_ForestSurrogate):
    def _make(self, n: int) -> Any:
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_samples=self.max_samples if n > self.max_samples else None,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )


@register_surrogate("ET")
class ExtraTreesSurrogate(_ForestSurrogate):
    def _make(self, n: int) -> Any:
        from sklearn.ensemble import ExtraTreesRegressor

        big = n > self.max_samples
        return ExtraTreesRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            bootstrap=big,
            max_samples=self.max_samples if big else None,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )


class QuantileWarp:
    """Monotone map of objectives to normal scores (a Gaussian copula), fixed at fit time.

    A value ``v`` goes to ``Phi^-1((r + 0.5) / (n + 1))`` where ``r`` is the number of the
    ``n`` reference values below ``v`` (ties count half), so the reference values spread
    evenly over ``(0, 1)`` before ``Phi^-1``, a new best maps just above the old one and a
    new worst just below. Forests then see ranks, not raw magnitudes: a few very bad
    objectives no longer dwarf the differences between good ones, and the spread of the
    trees' leaf values stops rewarding candidates that merely sit next to a bad point.
    """

    def __init__(self, reference: np.ndarray) -> None:
        self._sorted = np.sort(np.asarray(reference, dtype=float))

    def __call__(self, values: Any) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        below = np.searchsorted(self._sorted, values, "left") + np.searchsorted(self._sorted, values, "right")
        return ndtri((0.5 * below + 0.5) / (len(self._sorted) + 1))


def identity(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=float)


@register_surrogate("GP")
class GaussianProcessSurrogate(Surrogate):
    #: points the kernel hyper-parameters are optimised on (the best ones)
    fit_points = 256
    #: points the posterior is conditioned on at a fit (the best ones)
    max_points = 1000
    #: most recent extra points (told since the fit, lies) conditioned on as well
    max_extra = 128
    n_restarts_optimizer = 2

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        order = np.argsort(-y, kind="stable")
        if len(X) > self.max_points:
            X, y, order = X[order[: self.max_points]], y[order[: self.max_points]], np.arange(self.max_points)
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            length_scale=np.ones(X.shape[1]), length_scale_bounds=(1e-2, 1e2), nu=2.5
        ) + WhiteKernel(1e-6, (1e-10, 1e-1))
        gp = GaussianProcessRegressor(
            kernel=kernel,
            normalize_y=True,
            n_restarts_optimizer=self.n_restarts_optimizer,
            random_state=self.random_state,
        )
        subset = order[: self.fit_points] if len(X) > self.fit_points else slice(None)
        with warnings.catch_warnings():  # kernel bounds hit on tiny data sets are expected
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(X[subset], y[subset])
        self._kernel = gp.kernel_
        self.fit_size = len(X[subset])
        self._base = (X, y)
        self._extra: list[tuple[np.ndarray, float]] = []
        self._gp = gp if len(X) <= self.fit_points else None

    def add(self, X: np.ndarray, y: np.ndarray, sign: int = 1) -> None:
        for x, value in zip(np.atleast_2d(X), np.atleast_1d(y)):
            if sign > 0:
                self._extra.append((np.asarray(x, dtype=float), float(value)))
                continue
            for i in range(len(self._extra) - 1, -1, -1):
                ex, ey = self._extra[i]
                if ey == float(value) and np.array_equal(ex, x):
                    del self._extra[i]
                    break
        self._gp = None

    def predict_prepared(self, prepared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._gp is None:
            from sklearn.gaussian_process import GaussianProcessRegressor

            X, y = self._base
            extra = self._extra[-self.max_extra :]
            if extra:
                X = np.vstack([X] + [x[None, :] for x, _ in extra])
                y = np.concatenate([y, [v for _, v in extra]])
            self._gp = GaussianProcessRegressor(kernel=self._kernel, optimizer=None, normalize_y=True)
            self._gp.fit(X, y)
        mean, std = self._gp.predict(np.asarray(prepared, dtype=float), return_std=True)
        return mean, std
