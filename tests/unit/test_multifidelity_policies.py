"""Exact decisions of the multi-fidelity stopping policies on small hand-checked examples."""
from __future__ import annotations

import numpy as np
import pytest

from hpcnas.core.errors import UsageError
from hpcnas.multifidelity import ASHA, PASHA, Decision, Hyperband, SuccessiveHalving, create_policy, rung_levels
from hpcnas.multifidelity.pasha import crossing_gaps
from hpcnas.multifidelity.simulate import simulate

C, S, W = Decision.CONTINUE, Decision.STOP, Decision.WAIT


def test_rung_levels():
    assert rung_levels(1, 27, 3) == [1, 3, 9, 27]
    assert rung_levels(1, 20, 3) == [1, 3, 9, 20]
    assert rung_levels(2, 2, 3) == [2]
    assert rung_levels(0.5, 4.0, 2) == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    "options",
    [dict(min_resource=0), dict(min_resource=5, max_resource=2), dict(reduction_factor=1)],
)
def test_bad_resources_are_usage_errors(options):
    with pytest.raises(UsageError):
        ASHA(**options)


@pytest.mark.parametrize(
    "options, words",
    [(dict(max_resource=float("inf")), "--max-resource must be a finite number, got inf"),
     (dict(max_resource=float("nan")), "--max-resource must be a finite number, got nan"),
     (dict(min_resource=float("inf"), max_resource=float("inf")), "--min-resource must be a finite number"),
     (dict(reduction_factor=float("inf")), "--reduction-factor must be a finite number"),
     (dict(reduction_factor=1.0000001), "make 32958372 rungs \\(at most 1000\\)")],
)
@pytest.mark.parametrize("policy", [ASHA, Hyperband, SuccessiveHalving, PASHA])
def test_endless_rungs_are_refused_at_once(policy, options, words):
    """``--max-resource inf`` used to build rungs forever (memory growing, no answer)."""
    with pytest.raises(UsageError, match=words):
        policy(**{"min_resource": 1, "reduction_factor": 3, **options})


def test_unknown_policy_names_the_choices():
    with pytest.raises(UsageError, match="asha.*hyperband.*pasha.*sh"):
        create_policy("bohb")


def test_asha_keeps_the_top_third_of_each_rung():
    p = ASHA(min_resource=1, max_resource=9, reduction_factor=3)
    assert p.report("a", 1, 0.5) == C  # alone at rung 1
    assert p.report("b", 1, 0.4) == S  # 2 at the rung: top 1 continues
    assert p.report("c", 1, 0.6) == C  # best of 3
    assert p.report("d", 1, 0.55) == C  # 4 at the rung: top 2 continue, d is 2nd
    assert p.report("a", 2, 0.6) == C  # between rungs: no decision
    assert p.report("a", 3, 0.7) == C  # alone at rung 3
    assert p.report("c", 3, 0.65) == S  # 2nd of 2 at rung 3
    assert p.report("a", 9, 0.8) == C  # max resource: it ends by itself
    assert p.report("a", 10, 0.8) == S  # past max resource
    # a report that jumps over a rung is recorded there: rank 5 of 5 at rung 1
    assert p.report("e", 3, 0.1) == S
    assert p.rung_values["e"] == {0: 0.1}
    assert p.best() == ("a", 0.8, 9)
    assert p.resource_used() == 10 + 1 + 3 + 1 + 3


def test_asha_rejects_decreasing_steps():
    p = ASHA()
    p.report("a", 2, 0.1)
    with pytest.raises(UsageError, match="must not decrease"):
        p.report("a", 1, 0.1)


def test_pasha_grows_the_max_resource_only_when_the_ranking_changes():
    p = PASHA(min_resource=1, max_resource=27, reduction_factor=3, epsilon=0.0)
    assert p.rungs[p.top_rung] == 3  # starts with two rungs
    assert p.report("t1", 1, 0.5) == C
    assert p.report("t1", 3, 0.6) == Decision.FINISH  # complete at the current max (3)
    assert p.report("t2", 1, 0.7) == C
    # t1 and t2 swap order between rungs 1 and 3: the next rung (9) is unlocked,
    # then t2 is judged by ASHA at rung 3 (2nd of 2) and stops
    assert p.report("t2", 3, 0.4) == S
    assert p.rungs[p.top_rung] == 9
    assert p.growth == [(2, 9)]
    assert p.report("t3", 1, 0.8) == C
    assert p.report("t3", 3, 0.9) == C  # best of 3 at rung 3, below the top rung
    assert p.report("t3", 9, 0.95) == Decision.FINISH  # alone at the top rung: no change
    assert p.rungs[p.top_rung] == 9
    assert p.best() == ("t3", 0.95, 9)


def test_pasha_soft_ranking_ignores_swaps_within_epsilon():
    p = PASHA(min_resource=1, max_resource=27, reduction_factor=3, epsilon=0.05)
    p.report("t1", 1, 0.50)
    p.report("t1", 3, 0.60)
    p.report("t2", 1, 0.52)
    assert p.report("t2", 3, 0.58) == Decision.FINISH  # swapped, but both gaps are within epsilon
    assert p.rungs[p.top_rung] == 3


def test_pasha_estimates_epsilon_from_criss_crossing_curves():
    curves = {
        "a": [(1, 0.1), (2, 0.5), (3, 0.6)],
        "b": [(1, 0.3), (2, 0.4), (3, 0.7)],  # crosses a twice: gaps 0.2 (step 1), 0.1 (step 2)
        "c": [(1, 0.0), (2, 0.0)],  # never crosses
    }
    assert sorted(np.round(crossing_gaps(curves), 6)) == [0.1, 0.2]
    p = PASHA(min_resource=1, max_resource=27, reduction_factor=3, epsilon_percentile=50)
    assert PASHA().epsilon() == 0.0
    for trial, curve in curves.items():
        for step, value in curve[:2]:
            p.report(trial, step, value)  # rung 1 records a, b, c: all contenders for the top rung
    p.report("a", 3, 0.6)
    p.report("b", 3, 0.7)
    assert p.epsilon() == pytest.approx(0.15)
    p.max_noise_trials = 1  # only the best contender at rung 1 (b): no pairs, no noise
    assert p.epsilon() == 0.0


def test_successive_halving_waits_for_its_cohort():
    p = SuccessiveHalving(min_resource=1, max_resource=9, reduction_factor=3, cohort_size=3)
    assert p.report("a", 1, 0.5) == W
    assert p.report("b", 1, 0.6) == W
    assert p.report("c", 1, 0.4) == S  # barrier complete: only b (top 1 of 3) goes on
    assert p.poll("a") == S
    assert p.poll("b") == C
    assert p.report("b", 3, 0.7) == C  # b is the only one expected at rung 3
    assert p.report("d", 1, 0.9) == W  # next cohort
    assert p.cohort_of == {"a": 0, "b": 0, "c": 0, "d": 1}


def test_successive_halving_barrier_skips_ended_trials_and_can_be_released():
    p = SuccessiveHalving(min_resource=1, max_resource=4, reduction_factor=2, cohort_size=4)
    for trial, value in zip("abcd", (0.1, 0.2, 0.3, 0.4)):
        p.report(trial, 1, value)
    assert p.poll("a") == S and p.poll("c") == C and p.poll("d") == C
    p.end("c")  # crashed after promotion
    assert p.report("d", 2, 0.5) == C  # d alone is expected at rung 2
    q = SuccessiveHalving(min_resource=1, max_resource=9, reduction_factor=3, cohort_size=3)
    assert q.report("a", 1, 0.5) == W
    assert q.report("b", 1, 0.6) == W
    assert sorted(q.release()) == ["a", "b"]
    assert q.poll("a") == S and q.poll("b") == C
    # late members of a released rung are judged like ASHA among the values recorded there
    assert q.report("c", 1, 0.9) == C  # best of 3
    assert q.report("b", 3, 0.7) == W  # rung 3 now expects b and c
    assert q.report("c", 3, 0.8) == C and q.poll("b") == S


def test_hyperband_brackets():
    p = Hyperband(min_resource=1, max_resource=9, reduction_factor=3)
    assert p.s_max == 2
    assert p.sizes == [9, 5, 3]
    assert [b.rungs for b in p.brackets] == [[1, 3, 9], [3, 9], [9]]
    joined = []
    for i in range(19):
        joined.append(p.bracket_for_next())
        p.report(i, 1, float(i))
    assert joined == [0] * 9 + [1] * 5 + [2] * 3 + [0] * 2
    # trials of bracket 1 start at 3: a report at step 1 is below their first rung
    assert p.report(9, 2, 1.0) == C
    assert Hyperband(asynchronous=True).brackets[0].name == "asha"


def test_simulated_asha_resource_is_exact():
    # decreasing constant curves, one worker: the first trial runs to the end, every later one
    # is last at rung 1 and stops there (top ceil(n/3) never includes it)
    values = [0.9 - 0.1 * i for i in range(9)]
    result = simulate(ASHA(1, 27, 3), values, lambda v: (lambda step: v), num_workers=1)
    assert [t.resource for t in result.trials] == [27] + [1] * 8
    assert result.total_resource == 35
    assert result.best == (0, 0.9, 27)
    # increasing curves: every newcomer is the best so far and is promoted to the end
    result = simulate(ASHA(1, 27, 3), values[::-1], lambda v: (lambda step: v), num_workers=1)
    assert result.total_resource == 9 * 27
    assert [t.status for t in result.trials] == ["finished"] * 9


def test_simulated_successive_halving_matches_the_textbook_counts():
    values = list(np.linspace(0.1, 0.9, 9))
    result = simulate(
        SuccessiveHalving(1, 9, 3, cohort_size=9), values, lambda v: (lambda step: v), num_workers=9
    )
    # 9 trials at 1, 3 at 3, 1 at 9: total 9*1 + 3*(3-1) + 1*(9-3) = 21 resource units
    assert sorted(t.resource for t in result.trials) == [1] * 6 + [3] * 2 + [9]
    assert result.total_resource == 21
    assert result.best[1] == pytest.approx(0.9)


def test_simulated_sh_with_fewer_workers_than_its_cohort_does_not_deadlock():
    values = list(np.linspace(0.1, 0.9, 9))
    result = simulate(SuccessiveHalving(1, 9, 3, cohort_size=9), values, lambda v: (lambda s: v), num_workers=3)
    assert all(t.status in ("stopped", "finished") for t in result.trials)
    assert result.best is not None
