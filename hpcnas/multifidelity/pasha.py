"""PASHA: progressive ASHA (Bohdal et al., "PASHA: Efficient HPO and NAS with Progressive
Resource Allocation", ICLR 2023).

PASHA runs ASHA with a *current* maximum resource that starts at the second rung
(``min_resource * reduction_factor``) and is raised one rung at a time, only while the
ranking of the configurations in the top two rungs keeps changing:

* a trial that reaches the current top rung stops there: it is complete at the current
  maximum resource (``Decision.FINISH``, status ``DONE``);
* each time a trial reaches the current top rung, the configurations recorded there are
  ranked by their objective at the top rung and at the rung below. If the two rankings
  disagree, the next rung is unlocked (up to ``max_resource``) and the arriving trial goes on
  under the ASHA rule;
* rankings are *soft*: two objectives closer than ``epsilon`` are equivalent, so a pair only
  disagrees when one configuration is more than ``epsilon`` better at one rung and the other
  more than ``epsilon`` better at the other rung;
* ``epsilon`` is estimated from the noise in rankings, as in the paper: over all pairs of
  trials whose order flips between two consecutive reported steps (criss-crossing learning
  curves), it is the ``epsilon_percentile``-th percentile (90 by default) of the gap between
  the two objectives before the flip. With no flips yet it is 0. A fixed ``epsilon`` may be
  given instead. The curves used are those of the contenders for the top rung (the trials
  recorded at the rung below it, at most ``max_noise_trials`` of the best), which keeps the
  cost bounded on long searches.

The configuration returned is the best one at the highest rung reached (``best()``).
"""
from __future__ import annotations

import numpy as np

from hpcnas.core.errors import UsageError
from hpcnas.multifidelity.asha import ASHA
from hpcnas.multifidelity.policy import Decision, TrialId, register_policy


def crossing_gaps(curves: dict[TrialId, list[tuple[float, float]]]) -> np.ndarray:
    """Gaps ``|y_i - y_j|`` at step ``s`` of every pair of trials whose order flips at the next
    step both reported (criss-crossing learning curves)."""
    by_step: dict[float, dict[TrialId, float]] = {}
    for trial, curve in curves.items():
        for step, value in curve:
            by_step.setdefault(step, {})[trial] = value
    steps = sorted(by_step)
    gaps: list[np.ndarray] = []
    for s0, s1 in zip(steps, steps[1:]):
        both = [t for t in by_step[s1] if t in by_step[s0]]
        if len(both) < 2:
            continue
        before = np.array([by_step[s0][t] for t in both])
        after = np.array([by_step[s1][t] for t in both])
        d_before = before[:, None] - before[None, :]
        flipped = np.triu(d_before * (after[:, None] - after[None, :]) < 0, 1)
        gaps.append(np.abs(d_before[flipped]))
    return np.concatenate(gaps) if gaps else np.empty(0)


@register_policy("pasha")
class PASHA(ASHA):
    """Progressive ASHA (see the module docstring)."""

    def __init__(
        self,
        min_resource: float = 1,
        max_resource: float = 27,
        reduction_factor: float = 3,
        epsilon: float | None = None,
        epsilon_percentile: float = 90.0,
        max_noise_trials: int = 512,
    ) -> None:
        super().__init__(min_resource, max_resource, reduction_factor)
        if epsilon is not None and epsilon < 0:
            raise UsageError(f"--epsilon must be >= 0 (or left out to estimate it), got {epsilon}")
        if not 0 <= epsilon_percentile <= 100:
            raise UsageError(f"--epsilon-percentile must be within [0, 100], got {epsilon_percentile}")
        self.fixed_epsilon = epsilon
        self.epsilon_percentile = epsilon_percentile
        self.max_noise_trials = max_noise_trials
        self._top = min(1, len(self.rungs) - 1)
        #: (trial count, rung resource) each time the top rung was raised
        self.growth: list[tuple[int, float]] = []

    @property
    def top_rung(self) -> int:
        return self._top

    def epsilon(self) -> float:
        """Ranking-noise threshold (fixed, or estimated from criss-crossing learning curves)."""
        if self.fixed_epsilon is not None:
            return self.fixed_epsilon
        below = self.records[max(0, self._top - 1)]
        contenders = sorted(below, key=lambda t: below[t], reverse=True)[: self.max_noise_trials]
        values = crossing_gaps({t: self.curves[t] for t in contenders if t in self.curves})
        return float(np.percentile(values, self.epsilon_percentile)) if values.size else 0.0

    def ranking_changed(self) -> bool:
        """Whether the soft rankings at the top rung and the rung below disagree."""
        top = self._top
        trials = [t for t in self.records[top] if t in self.records[top - 1]]
        if len(trials) < 2:
            return False
        eps = self.epsilon()
        upper = np.array([self.records[top][t] for t in trials])
        lower = np.array([self.records[top - 1][t] for t in trials])
        d_upper = upper[:, None] - upper[None, :]
        d_lower = lower[:, None] - lower[None, :]
        clear_upper = np.where(np.abs(d_upper) > eps, np.sign(d_upper), 0)
        clear_lower = np.where(np.abs(d_lower) > eps, np.sign(d_lower), 0)
        return bool(np.any(clear_upper * clear_lower < 0))

    def _decide(self, trial_id: TrialId, k: int) -> Decision:
        last = len(self.rungs) - 1
        if k == self._top and self._top < last and self.ranking_changed():
            self._top += 1
            self.growth.append((len(self.curves), self.rungs[self._top]))
        if k >= last:
            return Decision.CONTINUE
        if k >= self._top:
            return Decision.FINISH  # complete at the current maximum resource
        return Decision.CONTINUE if self.promotable(trial_id, k) else Decision.STOP
