"""NAS searches, registered for ``hpcnas nas SEARCH``: age, agebo, random, ambsmixed, regevomixed, ppo."""
from __future__ import annotations

from typing import Any

#: modules that register a search (imported by :func:`hpcnas.search.base.get_search_class`);
#: not imported here, so ``python -m hpcnas.search.nas.age`` runs without a runpy warning
SEARCH_MODULES = ("age", "agebo", "ambsmixed", "ppo", "random_search", "regevomixed")

__all__ = list(SEARCH_MODULES)


def __getattr__(name: str) -> Any:
    if name in SEARCH_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
