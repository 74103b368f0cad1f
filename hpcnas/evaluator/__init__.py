"""Evaluators run ``run(config)`` for many configurations in parallel on some backend."""
from __future__ import annotations

from hpcnas.evaluator.base import (
    EvalResult,
    Evaluator,
    create_evaluator,
    evaluator_names,
    get_evaluator_class,
    register_evaluator,
)

__all__ = [
    "EvalResult",
    "Evaluator",
    "create_evaluator",
    "evaluator_names",
    "get_evaluator_class",
    "register_evaluator",
]
