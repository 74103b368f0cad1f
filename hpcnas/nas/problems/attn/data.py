"""Attn-like data: binary classification of tabular samples (drug response: responsive or not).

* :func:`make_synthetic` -- deterministic data: a few informative features act through a
  pairwise interaction and a gate (the kind of structure an attention-like model picks up),
  the rest is noise; classes are imbalanced like the real set (``positive_fraction``).
* :func:`load_candle` -- the CANDLE Pilot1 Attn file ``top_21_1fold_001.h5`` that
  ``download_data.sh`` fetches: pandas HDF5 tables ``x_train_0``, ``x_train_1``, ...
  (feature blocks, concatenated column-wise), ``y_train``, and the same for ``val``; the label
  is the last column of ``y_*`` (one-hot ``[0, 1]`` or a 0/1 column). Needs ``tables``.
* :func:`load_data` -- the CANDLE file when ``data_path`` (or ``HPCNAS_ATTN_DATA``) is given,
  else synthetic data with a seeded train/valid split; features are standardised with the
  training rows' statistics. Labels are one column of 0/1.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from hpcnas.core.errors import HpcnasError

DATA_FILE = "top_21_1fold_001.h5"


def make_synthetic(
    n_samples: int = 3000, n_features: int = 40, n_informative: int = 8, positive_fraction: float = 0.3,
    noise: float = 0.3, seed: int = 2021,
) -> tuple[np.ndarray, np.ndarray]:
    if n_samples < 10 or not 0 < n_informative <= n_features:
        raise HpcnasError("attn synthetic data: n_samples >= 10 and 0 < n_informative <= n_features")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, n_features)).astype("float32")
    w = rng.normal(size=(n_informative,))
    inf = x[:, :n_informative]
    gate = 1.0 / (1.0 + np.exp(-inf[:, 0] * 2.0))
    score = gate * (inf @ w) + (1 - gate) * inf[:, 1] * inf[:, 2] + noise * rng.normal(size=n_samples)
    threshold = np.quantile(score, 1.0 - positive_fraction)
    y = (score > threshold).astype("float32")[:, None]
    return x, y


def load_candle(path: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_val, y_val))`` from the CANDLE Attn HDF5 file."""
    import pandas as pd

    if not os.path.exists(path):
        raise HpcnasError(f"Attn file {path} does not exist: run hpcnas/nas/problems/attn/download_data.sh {os.path.dirname(path) or '.'}")
    try:
        with pd.HDFStore(path, mode="r") as store:
            keys = {k.lstrip("/") for k in store.keys()}

            def part(split: str) -> tuple[np.ndarray, np.ndarray]:
                blocks = sorted((k for k in keys if k.startswith(f"x_{split}_")), key=lambda k: int(k.rsplit("_", 1)[1]))
                if not blocks or f"y_{split}" not in keys:
                    raise HpcnasError(f"{path} has no x_{split}_0 / y_{split} tables (found {sorted(keys)})")
                x = np.concatenate([store[k].to_numpy("float32") for k in blocks], axis=1)
                y = np.asarray(store[f"y_{split}"].to_numpy("float32"))
                y = y.reshape(len(y), -1)[:, -1:]
                return x, y

            return part("train"), part("val")
    except ImportError as err:
        raise HpcnasError(f"reading {path} needs PyTables: pip install tables ({err})") from err


def load_data(
    n_samples: int = 3000, valid_fraction: float = 0.2, seed: int = 2021, data_path: str | None = None, **synthetic: Any
) -> tuple[Any, Any]:
    """The Attn problem's loader: ``((x_train, y_train), (x_valid, y_valid))``."""
    data_path = data_path or os.environ.get("HPCNAS_ATTN_DATA")
    if data_path:
        (x_tr, y_tr), (x_va, y_va) = load_candle(data_path)
    else:
        if not 0 < valid_fraction < 1:
            raise HpcnasError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
        x, y = make_synthetic(n_samples=n_samples, seed=seed, **synthetic)
        order = np.random.default_rng(seed).permutation(len(y))
        n_va = max(1, int(round(len(y) * valid_fraction)))
        x_tr, y_tr, x_va, y_va = x[order[n_va:]], y[order[n_va:]], x[order[:n_va]], y[order[:n_va]]
    mean, std = x_tr.mean(0), x_tr.std(0)
    std = np.where(std > 0, std, 1.0)
    return (((x_tr - mean) / std).astype("float32"), y_tr), (((x_va - mean) / std).astype("float32"), y_va)
