"""hpcnas: scalable hyper-parameter search and neural architecture search on Balsam."""
from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy exports keep ``import hpcnas`` light
    if name in ("report", "StopEvaluation"):
        from hpcnas.multifidelity import reporting

        return getattr(reporting, name)
    raise AttributeError(f"module 'hpcnas' has no attribute {name!r}")
