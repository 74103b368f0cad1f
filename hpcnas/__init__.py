"""hpcnas: scalable hyper-parameter search and neural architecture search on Balsam.

``hpcnas.search(problem, run, ...)`` runs a search and returns its results as a DataFrame,
``hpcnas.load_results(dir_or_db)`` reads them back (:mod:`hpcnas.api`).
"""
from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy exports keep ``import hpcnas`` light
    if name in ("report", "StopEvaluation"):
        from hpcnas.multifidelity import reporting

        return getattr(reporting, name)
    if name == "search":  # the package hpcnas.search, callable: hpcnas.search(problem, run, ...)
        import hpcnas.search

        return hpcnas.search
    if name in ("load_results", "SearchFailed"):
        from hpcnas import api

        return getattr(api, name)
    raise AttributeError(f"module 'hpcnas' has no attribute {name!r}")
