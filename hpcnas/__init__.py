"""hpcnas: scalable hyper-parameter search and neural architecture search on Balsam."""
from __future__ import annotations

__version__ = "0.1.0"
