"""Worker arithmetic of the Balsam evaluator."""
from __future__ import annotations

import pytest

from hpcnas.balsam.workers import plan_workers
from hpcnas.core.errors import UsageError


@pytest.mark.parametrize(
    "nodes, packing, master_packing, in_launcher, expected",
    [
        (1, 2, 1000, True, 2),  # workstation: the search job takes 1/1000 of the node
        (1, 2, 2, True, 1),  # the search job takes one of two slots
        (4, 8, 8, True, 31),  # Theta-like: 4 x 8 slots minus the master's one
        (4, 8, 1, False, 32),  # master outside the launcher
        (2, 1, 1000, True, 2),  # 1/node: the master's node still fits one (1.001 tolerance)
    ],
)
def test_serial_mode(nodes, packing, master_packing, in_launcher, expected):
    plan = plan_workers(nodes, "serial", evals_per_node=packing, master_in_launcher=in_launcher,
                        master_packing=master_packing)
    assert plan.num_workers == expected
    assert plan.total == expected + plan.queue_ahead and plan.queue_ahead >= 1
    assert f"-> {expected} worker(s)" in plan.explanation


@pytest.mark.parametrize(
    "nodes, per_eval, in_launcher, expected",
    [(9, 2, True, 4), (9, 2, False, 4), (8, 2, False, 4), (2, 1, True, 1), (129, 8, True, 16)],
)
def test_mpi_mode(nodes, per_eval, in_launcher, expected):
    plan = plan_workers(nodes, "mpi", nodes_per_eval=per_eval, ranks_per_node=4, master_in_launcher=in_launcher)
    assert plan.num_workers == expected
    assert "mpi mode" in plan.explanation


def test_master_taking_the_whole_only_node_is_rejected_with_numbers():
    with pytest.raises(UsageError, match=r"1 node\(s\) x 2 evals/node = 2 slots.*--node-packing-count 1000"):
        plan_workers(1, "serial", evals_per_node=2, master_packing=1)


def test_mpi_without_room_is_rejected_with_numbers():
    with pytest.raises(UsageError, match=r"at least 3 nodes"):
        plan_workers(2, "mpi", nodes_per_eval=2)


def test_serial_mode_refuses_multi_rank_evaluations():
    with pytest.raises(UsageError, match="--job-mode mpi"):
        plan_workers(4, "serial", ranks_per_node=2)


def test_outside_a_launcher_needs_num_workers():
    with pytest.raises(UsageError, match="--num-workers"):
        plan_workers(None, None)


@pytest.mark.parametrize("kwargs", [{"nodes_per_eval": 0}, {"evals_per_node": -1}])
def test_nonsense_counts(kwargs):
    with pytest.raises(UsageError):
        plan_workers(2, "mpi", **kwargs)


def test_unknown_mode_and_explicit_queue():
    with pytest.raises(UsageError, match="neither"):
        plan_workers(2, "hybrid")
    assert plan_workers(3, "serial", evals_per_node=4, master_in_launcher=False, queue_ahead=0).total == 12


def test_deephyper_workers_per_node_recipe_node_one_holds_the_search_and_three():
    """DeepHyper's guide: --node-packing-count=4 + DEEPHYPER_WORKERS_PER_NODE=4 -> node 1: search + 3, others 4."""
    from hpcnas.balsam.workers import evals_per_node_from_env

    per_node = evals_per_node_from_env({"DEEPHYPER_WORKERS_PER_NODE": "4"})
    assert per_node == 4
    assert plan_workers(1, "serial", evals_per_node=per_node, master_packing=4).num_workers == 3
    assert plan_workers(3, "serial", evals_per_node=per_node, master_packing=4).num_workers == 3 + 4 + 4
    # hpcnas's own name wins over the alias; unset: 1
    assert evals_per_node_from_env({"HPCNAS_WORKERS_PER_NODE": "2", "DEEPHYPER_WORKERS_PER_NODE": "4"}) == 2
    assert evals_per_node_from_env({}) == 1


@pytest.mark.parametrize("value", ["four", "0", "-1", "2.5"])
def test_bad_workers_per_node_is_a_one_line_error(value):
    from hpcnas.balsam.workers import evals_per_node_from_env

    with pytest.raises(UsageError, match="DEEPHYPER_WORKERS_PER_NODE=.*set it to 1 or more"):
        evals_per_node_from_env({"DEEPHYPER_WORKERS_PER_NODE": value})
