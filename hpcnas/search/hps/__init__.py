"""Hyper-parameter searches, registered as ``hpcnas hps <name>``.

* ``random`` -- :class:`~hpcnas.search.hps.random_search.RandomSearch`
* ``ambs``   -- :class:`~hpcnas.search.hps.ambs.AMBS` (Bayesian optimisation, RF/ET/GP, constant liar)
* ``age``    -- :class:`~hpcnas.search.hps.age.AgE` (aging evolution)

:mod:`hpcnas.search.hps.encoding` (vector view of a space) and
:mod:`hpcnas.search.hps.surrogate` (cheaply updated surrogates) are shared with AgEBO.
"""
from __future__ import annotations

from typing import Any

#: modules that register a search (imported by :func:`hpcnas.search.base.get_search_class`);
#: not imported here, so ``python -m hpcnas.search.hps.ambs`` runs without a runpy warning
SEARCH_MODULES = ("age", "ambs", "random_search")
_CLASSES = {"AgE": "age", "AMBS": "ambs", "RandomSearch": "random_search"}

__all__ = ["AMBS", "AgE", "RandomSearch"]


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_CLASSES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
