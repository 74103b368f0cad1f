"""Searches: pure ask/tell algorithms (no I/O) and the master loop that drives them.

The package is callable: ``hpcnas.search(problem, run, ...)`` is :func:`hpcnas.api.search`.
"""
from __future__ import annotations

import sys
import types
from typing import Any

from hpcnas.search.base import Search, get_search_class, register_search, search_names


class _CallableModule(types.ModuleType):
    """``hpcnas.search`` is both this package and the one-call API (:func:`hpcnas.api.search`)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from hpcnas.api import search

        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["Search", "get_search_class", "register_search", "search_names"]
