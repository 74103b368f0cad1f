"""What a pending point tells AMBS's surrogate until its result arrives (its *lie*).

* ``none`` (the default): nothing. A pending point is not in the model until it is told; the
  asks still differ because each screens fresh random candidates (and the picks of one batch
  ``ask(k)`` repel each other with temporary ``cl_max`` lies). On the suite
  (docs/benchmark_suite.rst) 8 asynchronous workers then need a median 1.19 times the
  evaluations of one for the same regret after 100 (10 seeds; ``cl_max`` 1.29), and on
  polynome2 with 4,096 workers the best after 10,000 evaluations is -0.9 instead of -6.9
  (``benchmarks/master_scale.py sim``): every lie near the best point makes its neighbourhood
  look worse, and with many pending points the picks are pushed out of the trust region.

Asynchronous asks may instead *lie* about pending points: each point handed out and not yet
told is added to the surrogate with a lie, so that the next asks go elsewhere; the lie is
replaced by the real objective when it is told. The constant liars follow
DeepHyper/scikit-optimize, which minimise ``-objective``:

* ``cl_max`` (DeepHyper's default) lies with the *worst* objective seen. It spreads the
  workers; on the suite it costs 8 workers 29 % more evaluations than 1 for the same regret,
  as the worst value in the leaves of the best point's neighbourhood sends every other
  worker away from it.
* ``cl_min`` lies with the best objective seen, ``cl_mean`` with the mean.
* ``kb`` (a *kriging believer*) lies with the model's own mean at the point (the mean when it
  was picked; a new model's mean after a refit): the leaves keep their mean and lose spread, so
  the trust region around the best stays attractive.
* ``blend`` lies between the two: the model's mean moved ``blend_weight`` (an AMBS setting,
  0.5) of the way towards the worst value seen, so a pending point repels the next picks less
  than ``cl_max`` and more than ``kb``.

With one worker nothing is pending at an ask, so the strategy does not change the asks.
:class:`PendingLies` is AMBS's book of pending points and their lies: it adds and removes
lies as statistics of the fitted surrogate (leaf sums for forests), never by a refit.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from hpcnas.search.hps.surrogate import Surrogate

LIAR_STRATEGIES = ("none", "cl_max", "cl_min", "cl_mean", "kb", "blend")


def lies_pending(strategy: str) -> bool:
    """Whether pending points change the model until they are told (``none``: they do not)."""
    return strategy != "none"


def is_believer(strategy: str) -> bool:
    """Whether ``strategy`` lies with the model's mean (stored in the surrogate's own scale)
    rather than with a constant objective."""
    return strategy in ("kb", "blend")


def believed(strategy: str, means: Any, worst: float, weight: float) -> np.ndarray:
    """A believer's lies at points where the model's means are ``means``: the means themselves
    (``kb``), or moved ``weight`` of the way towards ``worst`` (``blend``; all in the
    surrogate's scale, larger is better)."""
    means = np.asarray(means, dtype=float)
    return means + weight * (worst - means) if strategy == "blend" else means


def constant_lie(strategy: str, successes: np.ndarray) -> float:
    """The objective a constant liar tells for every pending point, from the objectives of the
    successful evaluations so far (all maximised); the worst for ``none`` and the believers
    (the temporary lies between the picks of one batch)."""
    if strategy == "cl_min":
        return float(successes.max())
    return float(successes.mean() if strategy == "cl_mean" else successes.min())


def lie_targets(strategy: str, lies: Sequence[Any], warp: Callable[[Any], np.ndarray]) -> np.ndarray:
    """The surrogate's targets of ``lies``: a believer's lies are in the surrogate's scale
    already, a constant liar's are objectives (warped like told objectives)."""
    return np.asarray(lies, dtype=float) if is_believer(strategy) else warp(list(lies))


class PendingLies:
    """The pending points of a model-based search and the lies they tell its surrogate.

    An *entry* is ``[features, lie, cached]``: the point's feature row, its lie (``None``: it
    tells nothing) and, when the point was picked by screening, ``(model version, prepared
    row)`` so that adding or removing it reuses the leaves computed at the pick. Entries are
    kept by point key in ``_lies`` (a list: the same point may be pending twice); lies of
    points asked since the model was last used wait in ``_unflushed`` and reach the model in
    one update (:meth:`_flush_lies`). The host sets ``liar_strategy``, ``blend_weight``,
    ``_model``, ``_model_version`` and ``_warp`` and provides ``_ok()`` (the successful
    objectives).
    """

    liar_strategy: str
    blend_weight: float
    _model: Surrogate | None
    _model_version: int
    _warp: Callable[[Any], np.ndarray]

    def _init_lies(self) -> None:
        self._lies: dict[bytes, list[list[Any]]] = {}  # pending key -> entries
        self._unflushed: list[list[Any]] = []  # entries with lies not yet added to the model

    def _ok(self) -> np.ndarray:
        raise NotImplementedError

    def _lie_value(self) -> float:
        return constant_lie(self.liar_strategy, self._ok())

    def _believed(self, means: Any, worst: float | None = None) -> Any:
        """A believer's lie (:func:`believed`): a float for a float."""
        if worst is None:
            worst = float(self._warp(self._lie_value()))
        lies = believed(self.liar_strategy, means, worst, self.blend_weight)
        return float(lies) if lies.ndim == 0 else lies

    def _record_pending(self, key: bytes, features: np.ndarray, picked: tuple[int, Any, float] | None) -> None:
        """Book a point just asked; ``picked`` is ``(model version, prepared row, mean)`` when
        the model screened it."""
        entry: list[Any] = [features, None, picked[:2] if picked else None]
        if self._model is not None and lies_pending(self.liar_strategy):
            if not is_believer(self.liar_strategy):
                entry[1] = self._lie_value()
            elif picked is not None and picked[0] == self._model_version:
                entry[1] = picked[2]
            else:  # not screened by this model (interleaved random point): its mean now
                entry[1] = self._believed(self._model.predict(features)[0][0])
            self._unflushed.append(entry)  # added to the model in one batch before it is used
        self._lies.setdefault(key, []).append(entry)

    def _settle_pending(self, keys: Sequence[bytes], pending: np.ndarray) -> list[Any]:
        """Take the told points that were pending out of the book (their lies out of the model,
        in one update); returns each told point's cached leaves (``None`` where there are none)."""
        cached: list[Any] = [None] * len(keys)
        removed: list[list[Any]] = []
        for i in np.flatnonzero(pending).tolist():
            lies = self._lies.get(keys[i])
            if lies:
                entry = lies.pop()
                if not lies:
                    del self._lies[keys[i]]
                cached[i] = entry[2]  # the same point: the same leaves
                if entry[1] is not None:
                    removed.append(entry)
        if self._model is not None and removed:
            self._add_entries(removed, self._lie_values(removed), sign=-1)
        return cached

    def _reinstall_lies(self) -> None:
        """Every pending lie into a newly installed model, in one update (believers: with the
        new model's means)."""
        self._unflushed = []
        entries = [entry for lies in self._lies.values() for entry in lies]
        if entries and is_believer(self.liar_strategy):
            assert self._model is not None
            means = self._believed(self._model.predict(np.concatenate([e[0] for e in entries]))[0])
            for entry, mean in zip(entries, means):
                entry[1] = float(mean)
            self._add_entries(entries, means)
        elif entries and lies_pending(self.liar_strategy):
            lie = self._lie_value()
            for entry in entries:
                entry[1] = lie
            self._add_entries(entries, self._warp([lie] * len(entries)))

    def _flush_lies(self) -> None:
        """Add the lies of the points asked since the model was last used, in one update."""
        if self._unflushed and self._model is not None:
            entries, self._unflushed = self._unflushed, []
            self._add_entries(entries, self._lie_values(entries))

    def _lie_values(self, entries: list[list[Any]]) -> np.ndarray:
        """The surrogate's targets of the lies of ``entries`` (:func:`lie_targets`)."""
        return lie_targets(self.liar_strategy, [e[1] for e in entries], self._warp)

    def _add_entries(self, entries: list[list[Any]], values: np.ndarray, sign: int = 1) -> None:
        """Add (``sign=-1``: remove) the points of ``entries`` with ``values``, in at most two
        updates: the leaves cached at a pick are reused while the model that computed them is
        in use (no second tree traversal)."""
        assert self._model is not None
        values = np.asarray(values, dtype=float)
        hit = np.array([e[2] is not None and e[2][0] == self._model_version for e in entries], dtype=bool)
        if hit.any():
            self._model.add_prepared(np.concatenate([e[2][1] for e, h in zip(entries, hit) if h]), values[hit], sign)
        if not hit.all():
            self._model.add(np.concatenate([e[0] for e, h in zip(entries, hit) if not h]), values[~hit], sign)
