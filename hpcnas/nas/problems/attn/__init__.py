"""Attn-like problem: see :mod:`.data`, :mod:`.space` and :mod:`.problem`."""
from __future__ import annotations

from hpcnas.nas.problems.attn.data import load_candle, load_data, make_synthetic
from hpcnas.nas.problems.attn.space import create_search_space

__all__ = ["create_search_space", "load_candle", "load_data", "make_synthetic"]
