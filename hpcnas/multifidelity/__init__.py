"""Multi-fidelity search: intermediate reports, early stopping and the schedulers that decide it.

* :func:`report` -- call from a run function after each unit of resource (epoch).
* Stopping policies, one per module: :class:`SuccessiveHalving` (``sh``), :class:`Hyperband`,
  :class:`ASHA`, :class:`PASHA`; built by name with :func:`create_policy`.
* :class:`~hpcnas.multifidelity.server.PolicyServer` serves a policy to evaluations in other
  processes and nodes; :mod:`hpcnas.multifidelity.search` exposes the policies as searches
  (``hpcnas hps asha --searcher ambs ...``); :func:`~hpcnas.multifidelity.simulate.simulate`
  drives a policy in-process on learning curves.
"""
from __future__ import annotations

import importlib
from typing import Any

#: public name -> its module; imported on first use, so ``hpcnas.multifidelity.reporting`` (loaded
#: in every evaluation process) does not pay for numpy and the policies
_EXPORTS = {
    "ASHA": "asha", "Hyperband": "hyperband", "PASHA": "pasha", "SuccessiveHalving": "successive_halving",
    "Decision": "policy", "StoppingPolicy": "policy", "create_policy": "policy", "policy_names": "policy",
    "register_policy": "policy", "rung_levels": "policy",
    "StopEvaluation": "reporting", "current_channel": "reporting", "report": "reporting",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"hpcnas.multifidelity.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hpcnas.multifidelity' has no attribute {name!r}")


__all__ = [
    "ASHA",
    "Decision",
    "Hyperband",
    "PASHA",
    "StopEvaluation",
    "StoppingPolicy",
    "SuccessiveHalving",
    "create_policy",
    "current_channel",
    "policy_names",
    "register_policy",
    "report",
    "rung_levels",
]
