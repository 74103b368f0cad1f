"""Hyper-parameter searches, registered as ``hpcnas hps <name>``.

* ``random`` -- :class:`~hpcnas.search.hps.random_search.RandomSearch`
* ``ambs``   -- :class:`~hpcnas.search.hps.ambs.AMBS` (Bayesian optimisation, RF/ET/GP, constant liar)
* ``age``    -- :class:`~hpcnas.search.hps.age.AgE` (aging evolution)

:mod:`hpcnas.search.hps.encoding` (vector view of a space) and
:mod:`hpcnas.search.hps.surrogate` (cheaply updated surrogates) are shared with AgEBO.
"""
from __future__ import annotations

from hpcnas.search.hps.age import AgE
from hpcnas.search.hps.ambs import AMBS
from hpcnas.search.hps.random_search import RandomSearch

__all__ = ["AMBS", "AgE", "RandomSearch"]
