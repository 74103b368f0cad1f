"""ASHA: asynchronous successive halving, as a stopping rule (Li et al., MLSys 2020).

When a trial's reports first reach rung ``k`` (below the last), its objective there is ranked
among every objective recorded at rung ``k`` so far, its own included. It continues while it
is in the top ``ceil(n_k / reduction_factor)`` (ties share the best rank), otherwise it stops.
Decisions never wait for other trials, so workers never idle. A trial that reports past
``max_resource`` is stopped there.
"""
from __future__ import annotations

from hpcnas.multifidelity.policy import Decision, StoppingPolicy, TrialId, rank_of, register_policy, top_count


@register_policy("asha")
class ASHA(StoppingPolicy):
    """Asynchronous successive halving (see the module docstring)."""

    def __init__(self, min_resource: float = 1, max_resource: float = 27, reduction_factor: float = 3) -> None:
        super().__init__(min_resource, max_resource, reduction_factor)
        #: objectives recorded at each rung: rung index -> {trial: objective}
        self.records: list[dict[TrialId, float]] = [{} for _ in self.rungs]

    def _record(self, trial_id: TrialId, k: int, objective: float) -> None:
        super()._record(trial_id, k, objective)
        self.records[k][trial_id] = objective

    def promotable(self, trial_id: TrialId, k: int) -> bool:
        """Whether the trial is in the top ``1/reduction_factor`` of rung ``k`` now."""
        values = self.records[k]
        rank = rank_of(values[trial_id], values.values())
        return rank <= top_count(len(values), self.reduction_factor)

    def _report(self, trial_id: TrialId, step: float, objective: float) -> Decision:
        last = len(self.rungs) - 1
        if step > self.rungs[last] + 1e-9:
            return Decision.STOP
        for k in self.new_rungs(trial_id, step):
            self._record(trial_id, k, objective)
            decision = self._decide(trial_id, k)
            if decision != Decision.CONTINUE:
                return decision
        return Decision.CONTINUE

    def _decide(self, trial_id: TrialId, k: int) -> Decision:
        if k >= len(self.rungs) - 1:
            return Decision.CONTINUE  # reached max_resource: the run function ends by itself
        return Decision.CONTINUE if self.promotable(trial_id, k) else Decision.STOP
