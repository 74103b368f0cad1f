"""A NAS problem for PPO tests: the combo problem's space, scored without training.

``Problem`` is imported on first use, so that the Balsam job runner, which imports this module
for ``match``, does not load the problem (seconds of imports per evaluation). ``match`` counts the decisions of ``arch_seq`` equal to :data:`TARGET` (0..8): a policy that
learns finds it; ``HPCNAS_TEST_SLEEP`` seconds of sleep make evaluations overlap on Balsam.
"""
from __future__ import annotations

import os
import time
from typing import Any

TARGET = [3, 5, 0, 7, 1, 4, 0, 1]


def match(config: dict[str, Any]) -> float:
    delay = float(os.environ.get("HPCNAS_TEST_SLEEP", "0") or 0)
    if delay:
        time.sleep(delay)
    return float(sum(int(a == t) for a, t in zip(config["arch_seq"], TARGET)))


def __getattr__(name: str) -> Any:
    if name == "Problem":  # the --problem of the tests
        from hpcnas.nas.problems.combo.problem import Problem

        return Problem
    if name == "RankOneFails":  # the problem, except on MPI rank 1, where loading it fails
        if os.environ.get("PMI_RANK") == "1":
            from hpcnas.core.errors import HpcnasError

            raise HpcnasError("test: rank 1 cannot load its problem")
        return __getattr__("Problem")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
