"""Hyperband (Li et al., JMLR 2018): successive halving brackets with different minimum resources.

With ``s_max = floor(log_eta(max_resource / min_resource))``, bracket ``s`` (``s_max`` down to 0)
starts its trials at ``max_resource * eta**-s`` and takes ``ceil((s_max + 1) / (s + 1) * eta**s)``
of them. Trials join brackets in that order as they first report, and the cycle repeats.
Inside a bracket, decisions follow synchronous successive halving (one cohort per bracket
visit, see :mod:`.successive_halving`), or ASHA with ``asynchronous=True`` (asynchronous
Hyperband, no barriers).
"""
from __future__ import annotations

import math
from typing import Any

from hpcnas.multifidelity.asha import ASHA
from hpcnas.multifidelity.policy import Decision, StoppingPolicy, TrialId, register_policy
from hpcnas.multifidelity.successive_halving import SuccessiveHalving


@register_policy("hyperband")
class Hyperband(StoppingPolicy):
    """Hyperband over successive-halving (or ASHA) brackets (see the module docstring)."""

    def __init__(
        self,
        min_resource: float = 1,
        max_resource: float = 27,
        reduction_factor: float = 3,
        asynchronous: bool = False,
    ) -> None:
        super().__init__(min_resource, max_resource, reduction_factor)
        eta = reduction_factor
        self.s_max = int(math.floor(math.log(max_resource / min_resource, eta) + 1e-9))
        self.asynchronous = asynchronous
        self.brackets: list[StoppingPolicy] = []
        self.sizes: list[int] = []
        for s in range(self.s_max, -1, -1):
            start = max_resource * eta ** (-s)
            if isinstance(min_resource, int) and float(start).is_integer():
                start = int(start)
            size = int(math.ceil((self.s_max + 1) / (s + 1) * eta**s - 1e-9))
            options: dict[str, Any] = dict(min_resource=start, max_resource=max_resource, reduction_factor=eta)
            bracket = ASHA(**options) if asynchronous else SuccessiveHalving(cohort_size=size, **options)
            self.brackets.append(bracket)
            self.sizes.append(size)
        self.bracket_of: dict[TrialId, int] = {}
        self._joined = 0

    def bracket_for_next(self) -> int:
        """Bracket index the next new trial joins."""
        position = self._joined % sum(self.sizes)
        for index, size in enumerate(self.sizes):
            if position < size:
                return index
            position -= size
        raise AssertionError("unreachable")

    def _bracket(self, trial_id: TrialId) -> StoppingPolicy:
        if trial_id not in self.bracket_of:
            self.bracket_of[trial_id] = self.bracket_for_next()
            self._joined += 1
        return self.brackets[self.bracket_of[trial_id]]

    def _report(self, trial_id: TrialId, step: float, objective: float) -> Decision:
        bracket = self._bracket(trial_id)
        for k in self.new_rungs(trial_id, step):
            self._record(trial_id, k, objective)
        return bracket.report(trial_id, step, objective)

    def _poll(self, trial_id: TrialId) -> Decision:
        return self._bracket(trial_id).poll(trial_id)

    def _end(self, trial_id: TrialId) -> None:
        if trial_id in self.bracket_of:
            self.brackets[self.bracket_of[trial_id]].end(trial_id)

    def release(self) -> list[TrialId]:
        released: list[TrialId] = []
        for bracket in self.brackets:
            if isinstance(bracket, SuccessiveHalving):
                released.extend(bracket.release())
        return released
