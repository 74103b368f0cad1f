"""Vector view of a problem's space, shared by the HPS searches (and AgEBO).

:class:`SpaceCodec` works on ConfigSpace's *vector representation* of a configuration: one
``float`` per hyper-parameter, in the space's own column order, where

* floats and integers are normalised to ``[0, 1]`` (on the log scale for log ranges),
* ordinals and categoricals hold the index of their value,
* an inactive conditional hyper-parameter is ``NaN``.

On top of that it offers, all vectorised over rows of a matrix:

* :meth:`SpaceCodec.sample`  -- valid random vectors (conditions and forbidden clauses applied),
* :meth:`SpaceCodec.mutate`  -- type-aware perturbation of some active columns of each row
  (Gaussian on the normalised / log scale for numbers, snapped to the integer grid
  (:meth:`SpaceCodec.snap`); a
  neighbour index for ordinals; another choice for categoricals),
* :meth:`SpaceCodec.repair`  -- make perturbed rows valid again (newly active children get a
  random value, newly inactive ones become ``NaN``, forbidden rows are dropped),
* :meth:`SpaceCodec.features` -- the numeric matrix a surrogate model learns from: numbers as
  their normalised value, ordinals as ``index / (k - 1)``, categoricals one-hot, inactive
  numbers ``-1`` and inactive categoricals all-zero,
* :meth:`SpaceCodec.keys` -- hashable keys that identify a configuration (duplicate checks).

The condition / forbidden evaluation reuses ConfigSpace's own vectorised checks (the same ones
``ConfigurationSpace.sample_configuration`` uses), so results agree with ConfigSpace.
"""
from __future__ import annotations

from typing import Any, Sequence

import ConfigSpace as CS
import numpy as np

from hpcnas.core.errors import HpcnasError
from hpcnas.problem.hp_problem import to_python

FLOAT, INT, ORD, CAT, CONST = "float", "int", "ord", "cat", "const"


class SpaceCodec:
    """Convert between configurations, ConfigSpace vectors and surrogate features."""

    def __init__(self, space: CS.ConfigurationSpace, seed: int | None = None) -> None:
        self.space = space
        self.rs = np.random.RandomState(seed)
        self.hps: list[Any] = list(space.values())
        self.names = [hp.name for hp in self.hps]
        self.kinds: list[str] = []
        self.sizes: list[int] = []  # number of values (grid points) of each column, 0 = continuous
        for hp in self.hps:
            if isinstance(hp, CS.CategoricalHyperparameter):
                self.kinds.append(CAT)
                self.sizes.append(len(hp.choices))
            elif isinstance(hp, CS.OrdinalHyperparameter):
                self.kinds.append(ORD)
                self.sizes.append(len(hp.sequence))
            elif isinstance(hp, CS.UniformIntegerHyperparameter):
                self.kinds.append(INT)
                self.sizes.append(int(hp.upper - hp.lower + 1))
            elif isinstance(hp, CS.UniformFloatHyperparameter):
                self.kinds.append(FLOAT)
                self.sizes.append(0)
            elif isinstance(hp, CS.Constant):
                self.kinds.append(CONST)
                self.sizes.append(1)
            else:
                raise HpcnasError(
                    f"hyper-parameter '{hp.name}' has type {type(hp).__name__}, which the HPS "
                    "searches do not support: use a uniform/log float or integer, a categorical or "
                    "an ordinal"
                )
        self.dim = len(self.hps)
        self._numeric = np.array([k in (FLOAT, INT) for k in self.kinds], dtype=bool)
        self._has_constraints = bool(space.conditions or space.forbidden_clauses)
        width = [s if k == CAT else 1 for k, s in zip(self.kinds, self.sizes)]
        self.num_features = int(sum(width))

    # ----------------------------------------------------------------- conversions
    def to_vectors(self, configs: Sequence[dict[str, Any]]) -> np.ndarray:
        """Vectors (``(n, dim)`` array) of configurations; a bad one raises HpcnasError."""
        out = np.empty((len(configs), self.dim))
        for i, config in enumerate(configs):
            try:
                out[i] = CS.Configuration(self.space, values=dict(config)).get_array()
            except Exception as err:  # noqa: BLE001 - ConfigSpace raises many types
                raise HpcnasError(
                    f"configuration {config} does not fit the problem's space ({err}): "
                    "results of another problem cannot be told to this search"
                ) from err
        return out

    def to_config(self, vector: np.ndarray) -> dict[str, Any]:
        """The configuration (plain Python values) of one valid vector."""
        return to_python(dict(CS.Configuration(self.space, vector=np.asarray(vector, dtype=float))))

    def to_configs(self, vectors: np.ndarray) -> list[dict[str, Any]]:
        return [self.to_config(v) for v in vectors]

    def features(self, vectors: np.ndarray) -> np.ndarray:
        """Surrogate input matrix (see the module docstring for the encoding)."""
        vectors = np.atleast_2d(vectors)
        out = np.zeros((len(vectors), self.num_features))
        col = 0
        for j, (kind, size) in enumerate(zip(self.kinds, self.sizes)):
            v = vectors[:, j]
            missing = np.isnan(v)
            if kind == CAT:
                rows = np.flatnonzero(~missing)
                out[rows, col + v[rows].astype(int)] = 1.0
                col += size
                continue
            if kind == ORD:
                val = v / max(size - 1, 1)
            elif kind == CONST:
                val = np.zeros_like(v)
            else:
                val = v
            out[:, col] = np.where(missing, -1.0, val)
            col += 1
        return out

    def keys(self, vectors: np.ndarray) -> list[bytes]:
        """Hashable identity of each row (rounded to 1e-6 on the normalised scale)."""
        rounded = np.round(np.nan_to_num(np.atleast_2d(vectors), nan=-1.0), 6) + 0.0
        return [row.tobytes() for row in rounded]

    # ----------------------------------------------------------------- sampling
    def _sample_columns(self, n: int) -> np.ndarray:
        cols = np.empty((n, self.dim))
        for j, hp in enumerate(self.hps):
            cols[:, j] = hp.sample_vector(n, seed=self.rs)
        return cols

    def sample(self, n: int) -> np.ndarray:
        """``n`` valid random vectors (uniform on the normalised scale, constraints applied)."""
        if n <= 0:
            return np.empty((0, self.dim))
        parts: list[np.ndarray] = []
        got = 0
        for _ in range(1000):
            batch = self.repair(self._sample_columns(max(n - got, 1) * (2 if self._has_constraints else 1)))
            parts.append(batch)
            got += len(batch)
            if got >= n:
                return np.concatenate(parts)[:n]
        raise HpcnasError(
            "could not sample valid configurations: the forbidden clauses exclude (almost) the "
            "whole space; relax them"
        )

    def mutate(
        self,
        parents: np.ndarray,
        num_changes: np.ndarray | int,
        scale: np.ndarray | float,
        change: np.ndarray | None = None,
    ) -> np.ndarray:
        """Perturb ``num_changes`` random active columns of each parent row (not repaired),
        or exactly the columns where the boolean matrix ``change`` is true.

        Numbers move by ``N(0, scale)`` on the normalised scale (reflected into ``[0, 1]``,
        integers snapped to their grid and moved at least one step); ordinals step to a
        neighbour index; categoricals switch to another choice.
        """
        parents = np.atleast_2d(np.asarray(parents, dtype=float))
        n = len(parents)
        children = parents.copy()
        num_changes = np.broadcast_to(np.asarray(num_changes), (n,))
        scale = np.broadcast_to(np.asarray(scale, dtype=float), (n,))
        mutable = ~np.isnan(parents) & (np.array(self.sizes) != 1)[None, :]
        if change is not None:
            change = np.asarray(change, dtype=bool) & mutable
        # choose columns: random priorities, keep the num_changes highest among mutable columns
        elif np.all(num_changes >= self.dim):
            change = mutable
        else:
            prio = np.where(mutable, self.rs.random_sample((n, self.dim)), -1.0)
            order = np.argsort(-prio, axis=1)
            ranks = np.empty_like(order)
            np.put_along_axis(ranks, order, np.arange(self.dim)[None, :].repeat(n, 0), axis=1)
            change = mutable & (ranks < num_changes[:, None])
        for j, (kind, size) in enumerate(zip(self.kinds, self.sizes)):
            rows = np.flatnonzero(change[:, j])
            if rows.size == 0:
                continue
            v = parents[rows, j]
            if kind in (FLOAT, INT):
                new = reflect(v + self.rs.standard_normal(rows.size) * scale[rows])
                if kind == INT:  # on the integer grid, at least one step away
                    hp = self.hps[j]
                    old, moved = hp.to_value(v), hp.to_value(new)
                    step = np.where(self.rs.random_sample(rows.size) < 0.5, -1, 1)
                    step = np.where(old + step < hp.lower, 1, np.where(old + step > hp.upper, -1, step))
                    new = hp.to_vector(np.where(moved == old, old + step, moved))
                children[rows, j] = new
            elif kind == ORD:
                step = np.where(self.rs.random_sample(rows.size) < 0.5, -1.0, 1.0)
                step = np.where(v + step < 0, 1.0, np.where(v + step > size - 1, -1.0, step))
                children[rows, j] = v + step
            elif kind == CAT:
                shift = self.rs.randint(1, size, size=rows.size)
                children[rows, j] = (v + shift) % size
        return children

    def snap(self, j: int, values: np.ndarray) -> np.ndarray:
        """Normalised values of integer column ``j`` moved onto its grid, by ConfigSpace's own
        rounding (a log-scale grid is not even): a snapped vector survives the round trip
        through its configuration unchanged, so it is recognised when it is told."""
        hp = self.hps[j]
        return hp.to_vector(hp.to_value(np.clip(values, 0.0, 1.0)))

    def repair(self, vectors: np.ndarray) -> np.ndarray:
        """Valid rows of ``vectors``: activate / deactivate children, drop forbidden rows."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=float)).copy()
        if not self._has_constraints:
            return vectors
        missing = np.isnan(vectors)
        if missing.any():
            fill = self._sample_columns(len(vectors))
            vectors[missing] = fill[missing]
        dag = self.space._dag  # ConfigSpace's vectorised constraint checks (columns = configs)
        matrix = vectors.T.copy()
        bad = np.zeros(len(vectors), dtype=bool)
        for clause in dag.unconditional_forbiddens:
            bad |= clause.is_forbidden_vector_array(matrix)
        for cnode in dag.minimum_conditions:
            satisfied = cnode.condition.satisfied_by_vector_array(matrix)
            matrix[np.ix_(cnode.children_indices, ~satisfied)] = np.nan
        for clause in dag.conditional_forbiddens:
            bad |= clause.is_forbidden_vector_array(matrix)
        return matrix.T[~bad]


def reflect(values: np.ndarray) -> np.ndarray:
    """Fold values back into ``[0, 1]`` (reflection at both bounds)."""
    values = np.mod(values, 2.0)
    return np.where(values > 1.0, 2.0 - values, values)
