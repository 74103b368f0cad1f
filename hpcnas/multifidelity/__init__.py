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

from hpcnas.multifidelity.asha import ASHA
from hpcnas.multifidelity.hyperband import Hyperband
from hpcnas.multifidelity.pasha import PASHA
from hpcnas.multifidelity.policy import (
    Decision,
    StoppingPolicy,
    create_policy,
    policy_names,
    register_policy,
    rung_levels,
)
from hpcnas.multifidelity.reporting import StopEvaluation, current_channel, report
from hpcnas.multifidelity.successive_halving import SuccessiveHalving

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
