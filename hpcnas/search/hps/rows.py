"""An append-only float matrix (AMBS's told points, features and objectives)."""
from __future__ import annotations

import numpy as np


class Rows:
    """Append-only float matrix with amortised O(1) appends."""

    def __init__(self, width: int) -> None:
        self._data = np.empty((64, width))
        self._n = 0

    def extend(self, rows: np.ndarray) -> None:
        rows = np.atleast_2d(rows)
        need = self._n + len(rows)
        if need > len(self._data):
            grown = np.empty((max(need, 2 * len(self._data)), self._data.shape[1]))
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = rows
        self._n = need

    def view(self) -> np.ndarray:
        return self._data[: self._n]

    def __len__(self) -> int:
        return self._n
