"""Searches: pure ask/tell algorithms (no I/O) and the master loop that drives them."""
from __future__ import annotations

from hpcnas.search.base import Search, get_search_class, register_search, search_names

__all__ = ["Search", "get_search_class", "register_search", "search_names"]
