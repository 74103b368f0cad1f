"""NAS problems shipped with hpcnas.

* ``hpcnas.nas.problems.combo.problem.Problem`` -- Combo-like multi-input regression (two drug
  descriptor inputs sharing one sub-network, plus a cell-line input), objective ``val_r2``.
* ``hpcnas.nas.problems.attn.problem.Problem`` -- Attn-like binary classification on tabular
  features, objective ``val_auc``.

Each has a deterministic synthetic generator (``make_synthetic``) used by default, a loader
for the real CANDLE files (``load_candle``, given ``data_dir``) and a ``download_data.sh``.
``TinyProblem`` variants use small data and few epochs for tests and demos.
"""
from __future__ import annotations
