"""Synchronous successive halving (Jamieson & Talwalkar 2016; Karnin et al. 2013), as a
stopping rule with rung barriers.

Trials form cohorts of ``cohort_size`` in the order they first report. At each rung below the
last, a trial *waits* (``Decision.WAIT``) until every cohort member still in the race has
reached that rung or ended; then the top ``ceil(n / reduction_factor)`` of the ``n`` members
recorded there continue and the others stop. Waiting trials hold their workers, so a cohort
must not be larger than the number of workers; :meth:`SuccessiveHalving.release` lets the
driver decide a barrier on the members present when no other progress is possible (the
policy server does so after ``barrier_timeout`` seconds); members that reach a released rung
later are judged there like in ASHA (top ``ceil(n / reduction_factor)`` of those recorded).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hpcnas.core.errors import UsageError
from hpcnas.multifidelity.policy import (
    Decision,
    StoppingPolicy,
    TrialId,
    rank_of,
    register_policy,
    top_count,
)


@dataclass
class _Cohort:
    members: list[TrialId] = field(default_factory=list)
    #: rung index -> {trial: objective}
    records: dict[int, dict[TrialId, float]] = field(default_factory=dict)
    #: rung index -> trials allowed to reach it (None: every member)
    expected: dict[int, set[TrialId] | None] = field(default_factory=dict)
    #: rung index -> trials that continue past it (set once the barrier is decided)
    promoted: dict[int, set[TrialId]] = field(default_factory=dict)
    #: rung index -> trials already judged there
    judged: dict[int, set[TrialId]] = field(default_factory=dict)


@register_policy("sh")
class SuccessiveHalving(StoppingPolicy):
    """Synchronous successive halving in cohorts (see the module docstring)."""

    def __init__(
        self,
        min_resource: float = 1,
        max_resource: float = 27,
        reduction_factor: float = 3,
        cohort_size: int = 9,
    ) -> None:
        super().__init__(min_resource, max_resource, reduction_factor)
        if not isinstance(cohort_size, int) or cohort_size < 1:
            raise UsageError(f"--cohort-size must be a positive integer, got {cohort_size!r}")
        self.cohort_size = cohort_size
        self.cohorts: list[_Cohort] = []
        self.cohort_of: dict[TrialId, int] = {}
        #: trial -> rung index it waits at
        self.waiting: dict[TrialId, int] = {}

    # ----------------------------------------------------------------- decisions
    def _join(self, trial_id: TrialId) -> _Cohort:
        if trial_id not in self.cohort_of:
            if not self.cohorts or len(self.cohorts[-1].members) >= self.cohort_size:
                self.cohorts.append(_Cohort())
            self.cohorts[-1].members.append(trial_id)
            self.cohort_of[trial_id] = len(self.cohorts) - 1
        return self.cohorts[self.cohort_of[trial_id]]

    def _report(self, trial_id: TrialId, step: float, objective: float) -> Decision:
        cohort = self._join(trial_id)
        if step > self.rungs[-1] + 1e-9:
            return Decision.STOP
        for k in self.new_rungs(trial_id, step):
            self._record(trial_id, k, objective)
            cohort.records.setdefault(k, {})[trial_id] = objective
            if k == len(self.rungs) - 1:
                return Decision.CONTINUE
            decision = self._decide(cohort, trial_id, k)
            if decision != Decision.CONTINUE:
                return decision
        return Decision.CONTINUE

    def _poll(self, trial_id: TrialId) -> Decision:
        k = self.waiting.get(trial_id)
        if k is None:
            return Decision.CONTINUE
        return self._decide(self.cohorts[self.cohort_of[trial_id]], trial_id, k)

    def _end(self, trial_id: TrialId) -> None:
        self.waiting.pop(trial_id, None)

    def _decide(self, cohort: _Cohort, trial_id: TrialId, k: int) -> Decision:
        if k not in cohort.promoted and self._barrier_complete(cohort, k):
            self._promote(cohort, k)
        if k not in cohort.promoted:
            self.waiting[trial_id] = k
            return Decision.WAIT
        if trial_id not in cohort.judged[k]:  # arrived after an early release: judged like ASHA
            values = cohort.records[k]
            if rank_of(values[trial_id], values.values()) <= top_count(len(values), self.reduction_factor):
                cohort.promoted[k].add(trial_id)
            cohort.judged[k].add(trial_id)
        self.waiting.pop(trial_id, None)
        return Decision.CONTINUE if trial_id in cohort.promoted[k] else Decision.STOP

    def _barrier_complete(self, cohort: _Cohort, k: int) -> bool:
        if len(cohort.members) < self.cohort_size:
            return False
        expected = cohort.members if k == 0 else cohort.promoted.get(k - 1)
        if expected is None:
            return False
        recorded = cohort.records.get(k, {})
        return all(t in recorded or t in self.ended for t in expected)

    def _promote(self, cohort: _Cohort, k: int) -> None:
        values = cohort.records.get(k, {})
        keep = top_count(len(values), self.reduction_factor)
        cohort.promoted[k] = {t for t, v in values.items() if rank_of(v, values.values()) <= keep}
        cohort.judged[k] = set(values)

    # ----------------------------------------------------------------- driver help
    def release(self) -> list[TrialId]:
        """Decide every barrier someone waits at on the members present; returns released trials."""
        released: list[TrialId] = []
        for trial_id, k in list(self.waiting.items()):
            cohort = self.cohorts[self.cohort_of[trial_id]]
            if k not in cohort.promoted:
                self._promote(cohort, k)
            released.append(trial_id)
        return released
