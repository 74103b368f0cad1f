"""AMBS: asynchronous model-based search (Bayesian optimisation with a constant liar).

Algorithm
---------
1. The problem's starting points, then ``n_initial_points`` uniform random points (asked;
   ``initial_counts_told``: until that many are told).
2. Afterwards every ask scores candidates with an acquisition function (``UCB`` with ``kappa``,
   ``EI`` or ``PI`` with ``xi``) on a surrogate (``RF``, ``ET`` or ``GP``, see
   :mod:`hpcnas.search.hps.surrogate`) and returns the best-scoring ones. Forests learn the
   *normal scores* of the objectives (their ranks through a Gaussian copula,
   :class:`~hpcnas.search.hps.surrogate.QuantileWarp`), not the raw values: on raw values the
   trees' spread next to a few very bad points dominates ``kappa * std`` and UCB picks
   candidates at random with respect to the objective. There are ``num_candidates``
   candidates (128 for forests, 512 for GP, at least 4 per asked point) drawn from the
   generators of :mod:`hpcnas.search.hps.candidates` in the shares of ``portfolio``:
   mostly trust-region moves, a few draws from the good points' marginals, the rest
   uniform random. A trust-region move perturbs a center with a Gaussian step of about
   ``radius`` on the normalised scale for numbers, and changes only about one categorical
   or ordinal hyper-parameter, so that a move in a categorical (NAS, tabular) space is a
   neighbour, not a random point. Forests perturb one center: the best point with its float
   hyper-parameters replaced by the weighted mean of the ``recombine_k`` (5) best points
   (intermediate recombination as in CMA-ES), which moves toward an optimum that the trees
   cannot extrapolate to. A GP perturbs the best points themselves (the best with
   probability 0.9, else the next of the ``top_k``), with steps spread over
   ``radius`` x 2^U(-1, 1), and lets its smooth posterior pick the direction. ``radius``
   follows the 1/5th success rule on the results of these local proposals (grow x1.5 on a
   new best, shrink x1.5^-1/4 otherwise, restart when tiny). The shares were chosen on the
   whole benchmark suite (``python -m benchmarks.suite``, docs/benchmark_suite.rst), not
   on one problem.
   Besides, each asked point is uniform random with probability ``random_share`` (10 %),
   not screened by the model, as SMAC's interleaved random configurations: the model only
   knows the basins it has seen, and on multimodal, separable and conditional problems it
   otherwise never leaves the first one it converged in.
3. Pending points (asked, not yet told) change nothing in the model by default (liar
   ``none``, :mod:`hpcnas.search.hps.liars`); each ask screens fresh random candidates, so
   consecutive asks differ. With another ``liar_strategy`` asks *lie* about pending points
   (``cl_max``: the worst objective seen, ``kb``: the model's mean). Lies never enter a
   refit (the model is fitted on told points only) and are added to the fitted model as leaf
   statistics: the lies of a batch of asks in one vectorised update before the model is next
   used, those of a batch of tells out in one, all pending lies back into the new leaves
   after a refit in one (microseconds per lie). A batch ``ask(k)`` picks ``batch_chunk``
   (32) points per screen of candidates, with temporary lies between the picks (the worst
   objective seen, whatever the liar), so it costs O(k), not O(k^2), and the picks spread.
4. A failed evaluation (objective ``None``) is learnt as the worst objective seen, so the
   model steers away from the region.
5. Several objectives (``--objectives``): random scalarization as ParEGO (Knowles 2006) and
   Paria et al. 2019: the surrogate learns the augmented Chebyshev scalarization of the
   normalised objectives with weights drawn uniformly on the simplex, drawn anew -- with new
   normalisation bounds -- at each refit (:meth:`HpSearch.rescalarized`,
   :mod:`hpcnas.search.multiobjective`), so successive refits aim at other parts of the front.

Cost per call (the master's overhead)
-------------------------------------
The surrogate's structure is *refitted* only when the number of told points has grown by
``refit_fraction`` (20 %) since the last fit (every tell while fewer than 5 points are
known). In between, told points and lies update the fitted model incrementally (forest:
one leaf per tree, :class:`~hpcnas.search.hps.surrogate.Surrogate`). A forest refit grows
each of its 64 trees on at most ``max_samples`` (1,000) points, so it costs a bounded ``C``
(0.3--3 s measured on a loaded 2-core machine); with refits every ``0.2 n`` tells the
*amortised* refit cost is ``C / (0.2 n)`` per tell -- it shrinks as ``1/n`` -- and the
number of refits over a search of ``N`` evaluations grows only as ``log N / log 1.2``.
A call without refit costs O(num_candidates x trees x depth), independent of ``n`` apart
from the tree depth (``log n``): milliseconds. The *median* ask+tell is such a call;
``benchmarks/search_overhead.py`` prints the median, the maximum and the amortised cost.
``GP`` is a subset-of-data GP (:class:`~hpcnas.search.hps.surrogate.GaussianProcessSurrogate`):
its kernel is optimised on at most 256 points and its posterior conditioned on at most
1,000 plus the 128 most recent extra points (lies, points told since the fit), so an ask
costs at most one O((1,000 + 128)^3) conditioning per pick, whatever ``n``.
``benchmarks/master_scale.py cost`` prints these costs against the number of pending points.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable

import numpy as np

from hpcnas.core.errors import UsageError
from hpcnas.search.base import register_search
from hpcnas.search.hps._base import HpSearch
from hpcnas.search.hps.background_fit import BackgroundFit, BackgroundFitting
from hpcnas.search.hps.acquisition import ACQUISITIONS
from hpcnas.search.hps.encoding import FLOAT
from hpcnas.search.hps.rows import Rows
from hpcnas.search.hps.trust_region import TrustRegionProposals
from hpcnas.search.hps.liars import LIAR_STRATEGIES, PendingLies, is_believer
from hpcnas.search.hps.surrogate import SURROGATES, QuantileWarp, Surrogate, identity

MAX_N_JOBS = 4096  # processes fitting a forest (joblib refuses more than 1,000,000)


@register_search("hps", "ambs")
class AMBS(PendingLies, BackgroundFitting, TrustRegionProposals, HpSearch):
    """Asynchronous model-based search (see the module docstring)."""

    #: candidates per ask by surrogate (forests: a wider screen favours points on leaf
    #: boundaries; a GP's smooth posterior profits from a wide one)
    num_candidates = {"RF": 128, "ET": 128, "GP": 512}
    #: trust-region proposals by surrogate: forests perturb the recombined center (weighted
    #: mean of the ``recombine_k`` best) with step ``radius``, which gives them direction; a GP
    #: models the slope itself and does better perturbing one of the ``top_k`` best (the best
    #: with probability ``parent_p``) with steps of radius x 2^U(-radius_spread, radius_spread)
    recombine = {"RF": True, "ET": True, "GP": False}
    recombine_k, top_k, parent_p, radius_spread = 5, 5, 0.9, 1.0
    refit_fraction = 0.2
    #: picks of one batch ask chosen on one screen of candidates (with lies between them); a
    #: larger batch screens fresh candidates per chunk, so that ask(k) costs O(k), not O(k^2)
    batch_chunk = 32
    radius_init, radius_min, radius_max = 0.1, 0.001, 0.5
    radius_grow = 1.5
    #: shares of the candidates from each generator (the rest: uniform random)
    portfolio = {"local": 0.85, "good": 0.05}
    #: probability that an asked point is uniform random, not screened by the model: once a
    #: trust region has locked onto one basin (one branch of a conditional space, one well per
    #: coordinate of a separable function) the model screens out every point elsewhere
    random_share = 0.1
    #: the good points whose marginals are sampled: this fraction of the successes (3 to 25)
    good_fraction = 0.15
    #: surrogates that learn normal scores of the objectives (QuantileWarp) instead of raw values
    warp_objectives = {"RF": True, "ET": True, "GP": False}
    #: the initial random points last until ``n_initial_points`` are *told* (not asked): with 8
    #: workers the model otherwise starts from the first two or three results (compared on the
    #: suite, docs/benchmark_suite.rst; with one worker both counts are the same at an ask)
    initial_counts_told = False
    #: how far the ``blend`` liar moves a pending point's lie from the model's mean towards the
    #: worst value seen (0: ``kb``, 1: ``cl_max`` in the leaves)
    blend_weight = 0.5

    def __init__(
        self,
        problem: Any,
        random_state: int | None = None,
        surrogate_model: str = "RF",
        acq_func: str = "UCB",
        kappa: float = 1.96,
        xi: float = 0.001,
        liar_strategy: str = "none",
        n_jobs: int = 1,
        n_initial_points: int = 10,
        **kwargs: Any,
    ) -> None:
        _choice("surrogate model", "--surrogate-model", surrogate_model, SURROGATES)
        _choice("acquisition function", "--acq-func", acq_func, ACQUISITIONS)
        _choice("liar strategy", "--liar-strategy", liar_strategy, LIAR_STRATEGIES)
        if not (isinstance(kappa, (int, float)) and math.isfinite(kappa) and kappa >= 0):
            raise UsageError(f"--kappa must be a finite number >= 0, got {kappa}")
        if not (isinstance(xi, (int, float)) and math.isfinite(xi) and xi >= 0):
            raise UsageError(f"--xi must be a finite number >= 0, got {xi}")
        if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1 or n_jobs > MAX_N_JOBS:
            raise UsageError(
                f"--n-jobs must be a number of processes from 1 to {MAX_N_JOBS} or -1 (all cores), got {n_jobs}"
            )
        if not isinstance(n_initial_points, int) or n_initial_points < 0:
            raise UsageError(f"--n-initial-points must be an integer >= 0, got {n_initial_points}")
        super().__init__(problem, random_state, **kwargs)
        self.surrogate_model, self.acq_func, self.liar_strategy = surrogate_model, acq_func, liar_strategy
        self.kappa, self.xi, self.n_jobs, self.n_initial_points = float(kappa), float(xi), n_jobs, n_initial_points
        self._features = Rows(self.codec.num_features)
        self._vectors = Rows(self.codec.dim)
        self._y = Rows(1)
        self._model: Surrogate | None = None
        self._warp: Callable[[Any], np.ndarray] = identity  # objective -> surrogate target
        self._warped = Rows(1)  # warped objectives of the successes (refreshed at refits)
        self._n_fit = 0
        self._init_lies()
        self.num_refits, self.last_fit_size = 0, 0
        self._model_version = 0
        self._picked_rows: dict[bytes, tuple[int, Any, float]] = {}
        self._background, self.num_background_fits = False, 0
        self._random_while_warming = 0  # random points asked while the model library was imported
        self._fitting: BackgroundFit | None = None
        self._radius, self._best_seen = self.radius_init, -np.inf
        self.num_region_gains = self.num_radius_restarts = 0
        self._local_picks: set[bytes] = set()  # keys of pending trust-region proposals
        self._float_columns = np.array([kind == FLOAT for kind in self.codec.kinds], dtype=bool)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--surrogate-model", dest="surrogate_model", default="RF", choices=sorted(SURROGATES),
                            help="surrogate model of the objective (default: RF); GP is exact up to 256 told "
                                 "points, then learns its kernel on the best 256 and from 1,000 on conditions "
                                 "on the best 1,000 (subset of data)")
        parser.add_argument("--acq-func", dest="acq_func", default="UCB", choices=sorted(ACQUISITIONS),
                            help="acquisition function (default: UCB)")
        parser.add_argument("--kappa", dest="kappa", type=float, default=1.96,
                            help="UCB exploration weight, >= 0 (default: 1.96)")
        parser.add_argument("--xi", dest="xi", type=float, default=0.001,
                            help="EI/PI improvement margin, >= 0 (default: 0.001)")
        parser.add_argument("--liar-strategy", dest="liar_strategy", default="none", choices=LIAR_STRATEGIES,
                            help="what pending points tell the model: none (default) nothing, cl_max the "
                                 "worst objective seen (DeepHyper's default), cl_min the best, cl_mean the "
                                 "mean, kb the model's own mean there (kriging believer), blend halfway from "
                                 "that mean to the worst")
        parser.add_argument("--n-jobs", dest="n_jobs", type=int, default=1,
                            help="processes used to fit the surrogate (-1: all cores; default: 1)")
        parser.add_argument("--n-initial-points", dest="n_initial_points", type=int, default=10,
                            help="random points before the model is used (default: 10)")

    # ----------------------------------------------------------------- hooks
    def _propose(self, n: int) -> np.ndarray:
        random_left = self.n_initial_points - (len(self._y) if self.initial_counts_told else len(self._seen))
        ok = self._ok()
        if random_left > 0 or ok.size < 2:
            return self.codec.sample(n if ok.size < 2 else min(n, random_left))
        n_random = int(self.codec.rs.binomial(n, self.random_share)) if self.random_share else 0
        if n_random:  # interleaved points the model does not screen (SMAC's "random design")
            rest = self._propose_by_model(n - n_random) if n > n_random else np.empty((0, self.codec.dim))
            return np.concatenate([self.codec.sample(n_random), rest])
        return self._propose_by_model(n)

    def _propose_by_model(self, n: int) -> np.ndarray:
        self._flush_lies()
        self._refresh_model()
        model = self._model
        if model is None:  # the model library is still being imported: random points meanwhile
            self._random_while_warming += n
            return self.codec.sample(n)
        warped = self._warped.view()
        center, spread = float(warped.mean()), float(warped.std()) or 1.0
        best = (float(warped.max()) - center) / spread
        acquisition = ACQUISITIONS[self.acq_func]
        lie = float(self._warp(self._lie_value()))
        picked: list[np.ndarray] = []
        is_local: list[np.ndarray] = []
        lied: list[Any] = []  # prepared rows of the temporary lies between the picks of one batch
        lied_values: list[float] = []
        believer = is_believer(self.liar_strategy)
        self._picked_rows = {}  # key -> (model version, prepared row, mean), reused by the lasting lie
        left = n
        while left > 0:  # one screen of candidates per chunk of picks: ask(k) costs O(k)
            m = min(left, self.batch_chunk)
            cands, local = self._candidates(max(self.num_candidates[self.surrogate_model], 4 * m))
            if len(cands) == 0:
                break
            prepared = model.prepare(self.codec.features(cands))
            taken = np.zeros(len(cands), dtype=bool)
            chosen: list[int] = []
            means: dict[int, float] = {}  # pick -> the model's mean there (the believer's lie)
            for _ in range(min(m, len(cands))):
                mean, std = model.predict_prepared(prepared)
                score = acquisition((mean - center) / spread, std / spread, best, self.kappa, self.xi)
                score[taken] = -np.inf
                j = int(np.argmax(score))
                taken[j] = True
                chosen.append(j)
                if left - len(chosen) > 0:  # later picks of this batch see a lie here
                    row = prepared[j : j + 1]
                    value = self._believed(mean[j], lie) if believer else lie
                    model.add_prepared(row, [value])
                    lied.append(row)
                    lied_values.append(value)
                means[j] = self._believed(mean[j], lie) if believer else float(mean[j])
            picked.append(cands[chosen])
            for key, j in zip(self.codec.keys(cands[chosen]), chosen):
                self._picked_rows[key] = (self._model_version, prepared[j : j + 1], means[j])
            is_local.append(local[chosen])
            left -= len(chosen)
        if lied:  # the asked points get their lasting lies in _on_asked
            model.add_prepared(np.concatenate(lied), lied_values, sign=-1)
        if not picked:
            return self.codec.sample(n)
        out, local = np.concatenate(picked), np.concatenate(is_local)
        self._local_picks.update(k for k, loc in zip(self.codec.keys(out), local) if loc)
        return out

    def _on_asked(self, vector: np.ndarray) -> None:
        key = self.codec.keys(vector)[0]
        self._record_pending(key, self.codec.features(vector), self._picked_rows.pop(key, None))

    def _observe(self, vectors: np.ndarray, objectives: np.ndarray, pending: np.ndarray) -> None:
        self._flush_lies()
        best_before = self._best_seen
        feats = self.codec.features(vectors)
        keys = self.codec.keys(vectors)
        cached = self._settle_pending(keys, pending)
        told = [[feats[i : i + 1], None, cached[i]] for i in range(len(feats))]  # entries of the told points
        self._best_seen = max(self._best_seen, float(np.nanmax(objectives, initial=-np.inf)))
        from_region = np.array([k in self._local_picks for k in keys], dtype=bool)
        self._local_picks.difference_update(keys)
        self._adapt_radius(objectives[from_region], best_before)
        self._features.extend(feats)
        self._vectors.extend(vectors)
        self._y.extend(objectives[:, None])
        self._warped.extend(self._warp(objectives[~np.isnan(objectives)])[:, None])
        if self._model is not None and (self._background or not self._refit_due()):
            worst = self._ok().min() if self._ok().size else 0.0
            self._add_entries(told, self._warp(np.where(np.isnan(objectives), worst, objectives)))

    # ----------------------------------------------------------------- internals
    def _ok(self) -> np.ndarray:
        y = self._y.view()[:, 0]
        return y[~np.isnan(y)]

    def _refit_due(self) -> bool:
        return len(self._y) - self._n_fit >= self.tells_per_refit(self._n_fit)

    def tells_per_refit(self, n_fit: int) -> int:
        """New told points that make a model fitted on ``n_fit`` points due for a refit."""
        return max(1, math.ceil(self.refit_fraction * n_fit))

    def _refit(self) -> None:
        self._install(*self._build(*self._training_data()), len(self._y))

    def _training_data(self) -> tuple[np.ndarray, np.ndarray, int]:
        if self.scalarizer is not None:  # several objectives: new random weights, all told rows again
            self._y = Rows(1)
            self._y.extend(self.rescalarized()[:, None])
            self._best_seen = float(np.max(self._ok(), initial=-np.inf))
        y = self._y.view()[:, 0].copy()
        y[np.isnan(y)] = self._ok().min()
        return self._features.view(), y, int(self.rng.integers(0, 2**31 - 1))

    def _build(self, X: np.ndarray, y: np.ndarray, seed: int) -> tuple[Surrogate, Callable[[Any], np.ndarray]]:
        """A surrogate fitted on ``X, y`` and its objective warp (pure: runs in a background thread too)."""
        model = SURROGATES[self.surrogate_model](random_state=seed, n_jobs=self.n_jobs)
        warp = QuantileWarp(y) if self.warp_objectives[self.surrogate_model] else identity
        model.fit(X, warp(y))
        return model, warp

    def _install(self, model: Surrogate, warp: Callable[[Any], np.ndarray], n_fit: int) -> None:
        """Use a model fitted on the first ``n_fit`` told points: the points told since and the
        pending lies go into it as statistics, each group in one vectorised update."""
        self._model, self._warp = model, warp
        self._model_version += 1  # leaves prepared for the old model are no longer valid
        self._warped = Rows(1)
        self._warped.extend(self._warp(self._ok())[:, None])
        self._n_fit = n_fit
        self.num_refits += 1
        self.last_fit_size = n_fit  # told points only: the lies never enter a fit
        if len(self._y) > n_fit:  # told while a background fit ran
            y = self._y.view()[n_fit:, 0]
            self._model.add(self._features.view()[n_fit:], self._warp(np.where(np.isnan(y), self._ok().min(), y)))
        self._reinstall_lies()


def _choice(what: str, option: str, value: Any, allowed: Any) -> None:
    if value not in allowed:
        raise UsageError(f"unknown {what} '{value}' for {option}: choose one of {', '.join(sorted(allowed))}")


if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    sys.exit(module_main("hps", "ambs"))
