"""Combo-like data: growth of a cell line under a pair of drugs.

Model inputs, in order: ``[cell features, drug 1 descriptors, drug 2 descriptors]``;
target: growth, one column.

* :func:`make_synthetic` -- deterministic data with the structure of the real benchmark: a
  pool of cell lines and drugs with fixed features, a response symmetric in the two drugs
  (each drug acts through the cell line, plus a drug-drug interaction), Gaussian noise.
* :func:`load_candle` -- the CANDLE Pilot1 Combo files that ``download_data.sh`` fetches:
  ``ComboDrugGrowth_Nov2017.csv`` (columns ``CELLNAME, NSC1, NSC2, PERCENTGROWTH``; others
  ignored; rows without a second drug dropped), ``descriptors.2D-NSC.5dose.filtered.txt``
  (tab-separated, first column ``NAME`` = NSC id) and
  ``combined_rnaseq_data_lincs1000_combat`` (tab-separated, first column ``Sample``; a cell
  name is matched as is or with the ``NCI60.`` prefix). Growth is divided by 100.
* :func:`load_data` -- the problem's loader: the CANDLE files when ``data_dir`` (or
  ``HPCNAS_COMBO_DATA``) is given, else synthetic data; then a seeded train/valid split and
  feature standardisation fitted on the training rows.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from hpcnas.core.errors import HpcnasError

RESPONSE_FILE = "ComboDrugGrowth_Nov2017.csv"
DRUG_FILE = "descriptors.2D-NSC.5dose.filtered.txt"
CELL_FILE = "combined_rnaseq_data_lincs1000_combat"


def make_synthetic(
    n_samples: int = 2000,
    n_cell_features: int = 24,
    n_drug_features: int = 32,
    n_cells: int = 40,
    n_drugs: int = 60,
    noise: float = 0.1,
    seed: int = 2020,
) -> tuple[list[np.ndarray], np.ndarray]:
    """``([cell, drug1, drug2], y)`` with ``n_samples`` rows; same arguments, same data."""
    if n_samples < 10:
        raise HpcnasError(f"n_samples must be at least 10, got {n_samples}")
    rng = np.random.default_rng(seed)
    cells = rng.normal(size=(n_cells, n_cell_features)).astype("float32")
    drugs = rng.normal(size=(n_drugs, n_drug_features)).astype("float32")
    k = 8
    a_drug = rng.normal(size=(n_drug_features, k)) / np.sqrt(n_drug_features)
    a_cell = rng.normal(size=(n_cell_features, k)) / np.sqrt(n_cell_features)
    c = rng.integers(n_cells, size=n_samples)
    d1 = rng.integers(n_drugs, size=n_samples)
    d2 = (d1 + 1 + rng.integers(n_drugs - 1, size=n_samples)) % n_drugs  # two different drugs
    h1, h2 = np.tanh(drugs[d1] @ a_drug), np.tanh(drugs[d2] @ a_drug)
    g = np.tanh(cells[c] @ a_cell)
    y = (h1 * g).sum(1) + (h2 * g).sum(1) + 0.5 * (h1 * h2).sum(1) + 0.3 * g[:, 0]
    y = y + noise * y.std() * rng.normal(size=n_samples)
    y = ((y - y.mean()) / y.std()).astype("float32")[:, None]
    return [cells[c], drugs[d1], drugs[d2]], y


def load_candle(data_dir: str, max_samples: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Read the CANDLE Combo files in ``data_dir`` (see the module docstring)."""
    import pandas as pd

    paths = {name: os.path.join(data_dir, name) for name in (RESPONSE_FILE, DRUG_FILE, CELL_FILE)}
    missing = [n for n, p in paths.items() if not os.path.exists(p)]
    if missing:
        raise HpcnasError(f"Combo files {missing} are not in {data_dir}: run hpcnas/nas/problems/combo/download_data.sh {data_dir}")
    resp = pd.read_csv(paths[RESPONSE_FILE], usecols=["CELLNAME", "NSC1", "NSC2", "PERCENTGROWTH"], low_memory=False)
    resp = resp.dropna(subset=["NSC1", "NSC2", "PERCENTGROWTH"])
    drugs = pd.read_csv(paths[DRUG_FILE], sep="\t", low_memory=False)
    drugs = drugs.set_index(drugs.columns[0]).apply(pd.to_numeric, errors="coerce").fillna(0.0)
    drugs.index = [_nsc(v) for v in drugs.index]
    cells = pd.read_csv(paths[CELL_FILE], sep="\t", low_memory=False)
    cells = cells.set_index(cells.columns[0]).astype("float32")
    resp["NSC1"], resp["NSC2"] = resp["NSC1"].map(_nsc), resp["NSC2"].map(_nsc)
    resp["CELL"] = [n if n in cells.index else f"NCI60.{n}" for n in resp["CELLNAME"].astype(str)]
    keep = resp["CELL"].isin(cells.index) & resp["NSC1"].isin(drugs.index) & resp["NSC2"].isin(drugs.index)
    resp = resp[keep]
    if max_samples:
        resp = resp.iloc[:max_samples]
    if resp.empty:
        raise HpcnasError(f"no Combo row of {paths[RESPONSE_FILE]} matches a cell line and two drugs with features")
    x = [cells.loc[resp["CELL"]].to_numpy("float32"), drugs.loc[resp["NSC1"]].to_numpy("float32"),
         drugs.loc[resp["NSC2"]].to_numpy("float32")]
    y = (resp["PERCENTGROWTH"].to_numpy("float32") / 100.0)[:, None]
    return x, y


def _nsc(value: Any) -> str:
    text = str(value).strip()
    if text.upper().startswith("NSC"):
        text = text[3:].lstrip("-_ ")
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def split_and_scale(x: list[np.ndarray], y: np.ndarray, valid_fraction: float, seed: int) -> tuple[Any, Any]:
    """Seeded train/valid split; each input standardised with the training rows' statistics."""
    if not 0 < valid_fraction < 1:
        raise HpcnasError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    n = len(y)
    order = np.random.default_rng(seed).permutation(n)
    n_valid = max(1, int(round(n * valid_fraction)))
    va, tr = order[:n_valid], order[n_valid:]
    xs_tr, xs_va = [], []
    for a in x:
        mean, std = a[tr].mean(0), a[tr].std(0)
        std = np.where(std > 0, std, 1.0)
        xs_tr.append(((a[tr] - mean) / std).astype("float32"))
        xs_va.append(((a[va] - mean) / std).astype("float32"))
    return (xs_tr, y[tr]), (xs_va, y[va])


def load_data(
    n_samples: int = 2000, valid_fraction: float = 0.2, seed: int = 2020, data_dir: str | None = None, **synthetic: Any
) -> tuple[Any, Any]:
    """The Combo problem's loader: ``((x_train, y_train), (x_valid, y_valid))``."""
    data_dir = data_dir or os.environ.get("HPCNAS_COMBO_DATA")
    if data_dir:
        x, y = load_candle(data_dir, max_samples=None)
    else:
        x, y = make_synthetic(n_samples=n_samples, seed=seed, **synthetic)
    return split_and_scale(x, y, valid_fraction, seed)
