"""Candidate generators for model-based search: the points an acquisition function screens.

A model-based search is only as good as the candidates it scores: a surrogate cannot pick a
point nobody proposed. AMBS screens a *portfolio* drawn from three generators, each strong
where the others are weak:

* :func:`trust_region` -- perturbations of one center (the recombined best points): steady
  local progress on smooth and ill-conditioned problems. Numbers move by a Gaussian step of
  ``radius`` on the normalised scale; in a space of many numbers each is moved with
  probability ``min(1, 20 / n_numbers)`` (as TuRBO does), and only about one discrete
  hyper-parameter (categorical / ordinal) changes per candidate, so that a move in a
  categorical space stays a *neighbour* of the center instead of a random point.
* :func:`good_marginals` -- each hyper-parameter drawn independently from the values the
  ``good`` best points took (numbers with a kernel around each, categoricals kept with
  probability ``1 - refresh``, otherwise redrawn uniformly): the product of the good
  points' marginals, the density TPE samples from. It reaches the basins of *several* good
  points at once and recombines coordinates between them, which wins on rugged, separable
  and tabular problems where one trust region gets stuck.
* uniform random points (``SpaceCodec.sample``): the global safety net.

All generators return valid vectors (conditions and forbidden clauses applied by
``SpaceCodec.repair``), possibly fewer than asked when forbidden rows are dropped.
"""
from __future__ import annotations

import numpy as np

from hpcnas.search.hps.encoding import CAT, FLOAT, INT, ORD, SpaceCodec, reflect

#: numbers perturbed per trust-region candidate, on average, in high-dimensional spaces
TR_NUMBERS = 20.0


def trust_region(codec: SpaceCodec, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """One perturbation of each row of ``centers`` with numeric step ``scales[i]``."""
    centers = np.atleast_2d(centers)
    n = len(centers)
    if n == 0:
        return np.empty((0, codec.dim))
    rs = codec.rs
    mutable = ~np.isnan(centers) & (np.array(codec.sizes) != 1)[None, :]
    numeric = np.array([k in (FLOAT, INT) for k in codec.kinds], dtype=bool)
    discrete = np.array([k in (CAT, ORD) for k in codec.kinds], dtype=bool)
    n_num, n_disc = int(numeric.sum()), int(discrete.sum())
    change = np.zeros((n, codec.dim), dtype=bool)
    if n_num:
        change |= numeric[None, :] & (rs.random_sample((n, codec.dim)) < min(1.0, TR_NUMBERS / n_num))
    if n_disc:
        change |= discrete[None, :] & (rs.random_sample((n, codec.dim)) < 1.0 / (n_disc + n_num))
    change &= mutable
    # every candidate changes at least one column
    empty = np.flatnonzero(~change.any(axis=1) & mutable.any(axis=1))
    if empty.size:
        prio = np.where(mutable[empty], rs.random_sample((empty.size, codec.dim)), -1.0)
        change[empty, np.argmax(prio, axis=1)] = True
    return codec.repair(codec.mutate(centers, codec.dim, scales, change=change))


def good_marginals(codec: SpaceCodec, good: np.ndarray, n: int, refresh: float = 0.15) -> np.ndarray:
    """``n`` vectors whose columns are drawn independently from the rows of ``good``."""
    good = np.atleast_2d(good)
    if n <= 0 or len(good) == 0:
        return np.empty((0, codec.dim))
    rs = codec.rs
    k = len(good)
    out = good[rs.randint(0, k, size=(n, codec.dim)), np.arange(codec.dim)[None, :]]
    for j, (kind, size) in enumerate(zip(codec.kinds, codec.sizes)):
        column = good[:, j]
        active = column[~np.isnan(column)]
        v = out[:, j]
        rows = np.flatnonzero(~np.isnan(v))
        if rows.size == 0 or size == 1:
            continue
        if kind in (FLOAT, INT):
            # Scott's rule on the good values, floored so that a collapsed set still explores
            spread = float(active.std()) if active.size > 1 else 0.25
            width = float(np.clip(1.06 * spread * active.size ** -0.2, 0.02, 0.3))
            if kind == INT:
                width = max(width, 0.5 / max(size - 1, 1))
            new = reflect(v[rows] + rs.standard_normal(rows.size) * width)
            if kind == INT:
                new = codec.snap(j, new)
            out[rows, j] = new
        elif kind == ORD:
            moved = rs.random_sample(rows.size) < refresh
            step = np.where(rs.random_sample(rows.size) < 0.5, -1.0, 1.0)
            out[rows, j] = np.where(moved, np.clip(v[rows] + step, 0, size - 1), v[rows])
        elif kind == CAT:
            moved = rs.random_sample(rows.size) < refresh
            out[rows, j] = np.where(moved, rs.randint(0, size, size=rows.size), v[rows])
    return codec.repair(out)
