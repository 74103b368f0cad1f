"""PPO NAS: the math (GAE, clipped objective), the worker split, synchronous agents, options."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hpcnas.cli.main import main
from hpcnas.core.errors import UsageError
from hpcnas.search.nas import ppo_math
from hpcnas.search.nas.ppo_cli import agent_count, plan_split
from tests.support.components import require
from tests.support.ppo_problems import TARGET, Problem, match

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PPO_ARGS = ["--problem", "tests.support.ppo_problems.Problem", "--run", "tests.support.ppo_problems.match"]


# ----------------------------------------------------------------------------- math
def test_gae_by_hand():
    rewards, values = np.array([[0.0, 0.0, 1.0]]), np.array([[0.5, 0.2, 0.8]])
    adv, ret = ppo_math.gae(rewards, values, gamma=1.0, lam=0.95)
    # delta = [0.2 - 0.5, 0.8 - 0.2, 1 - 0.8]; A2 = 0.2, A1 = 0.6 + 0.95 * 0.2, A0 = -0.3 + 0.95 * A1
    np.testing.assert_allclose(adv[0], [-0.3 + 0.95 * 0.79, 0.79, 0.2])
    np.testing.assert_allclose(ret, adv + values)
    adv, _ = ppo_math.gae(rewards, values, gamma=0.9, lam=0.5)
    a2 = 1 - 0.8
    a1 = 0.9 * 0.8 - 0.2 + 0.45 * a2
    np.testing.assert_allclose(adv[0], [0.9 * 0.2 - 0.5 + 0.45 * a1, a1, a2])


def test_gae_limits_are_monte_carlo_and_one_step_td():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(4, 6))
    rewards = ppo_math.episode_rewards([1.0, None, -2.0, 3.5], 6, failure_reward=-5.0)
    assert rewards[1, -1] == -5.0 and not rewards[:, :-1].any()
    mc, ret = ppo_math.gae(rewards, values, 1.0, 1.0)  # lam = 1: the return minus the value
    np.testing.assert_allclose(mc, rewards[:, -1:] - values)
    np.testing.assert_allclose(ret[:, 0], rewards[:, -1])
    td, _ = ppo_math.gae(rewards, values, 0.9, 0.0)  # lam = 0: r + gamma V' - V
    nxt = np.concatenate([values[:, 1:], np.zeros((4, 1))], axis=1)
    np.testing.assert_allclose(td, rewards + 0.9 * nxt - values)


def test_clipped_surrogate_is_pessimistic():
    ratio = np.array([1.5, 1.5, 0.5, 0.5, 1.1])
    adv = np.array([2.0, -2.0, 2.0, -2.0, 1.0])
    # A > 0: gains capped at (1 + eps) A; A < 0: a ratio far from 1 is not forgiven
    np.testing.assert_allclose(ppo_math.clipped_surrogate(ratio, adv, 0.2), [2.4, -3.0, 1.0, -1.6, 1.1])


def test_minibatches_always_the_same_number():
    rng = np.random.default_rng(1)
    parts = ppo_math.minibatches(3, 4, rng)
    assert len(parts) == 4 and sorted(np.concatenate(parts).tolist()) == [0, 1, 2]
    assert sum(len(p) == 0 for p in parts) == 1


@pytest.mark.tf
def test_tensorflow_loss_is_the_clipped_objective():
    require("tensorflow", _has_tf(), "pip install 'hpcnas[tf]'")
    from hpcnas.search.nas.ppo_policy import Policy

    policy = Policy([3, 5, 2], "ppo_lstm_32", seed=4)
    rng = np.random.default_rng(2)
    actions, logp, _ = policy.sample(6, rng)
    np.testing.assert_allclose(policy.log_prob(actions), logp, atol=1e-5)  # sampling and training agree
    old = logp + rng.normal(0, 0.5, size=logp.shape)  # ratios away from 1: some are clipped
    adv = rng.normal(size=logp.shape)
    _, stats = policy.gradients(actions, old, adv, np.zeros_like(adv), cliprange=0.2, ent_coef=0.0)
    ratio = np.exp(policy.log_prob(actions) - old)
    assert stats["pg_loss"] == pytest.approx(-ppo_math.clipped_surrogate(ratio, adv, 0.2).mean(), rel=1e-4)
    assert 0 < stats["clipfrac"] < 1
    assert (actions < np.array([3, 5, 2])).all()  # masked logits: every value exists


# ----------------------------------------------------------------------------- worker split
def test_max_evals_is_shared_exactly_among_agents():
    from hpcnas.core.errors import UsageError

    assert [ppo_math.share_evals(10, 3, r) for r in range(3)] == [4, 3, 3]  # was 3 + 3 + 3 = 9
    assert sum(ppo_math.share_evals(1000000, 11, r) for r in range(11)) == 1000000
    with pytest.raises(UsageError, match="fewer than the 3 PPO agents"):
        ppo_math.share_evals(2, 3, 0)  # each agent used to get 1: 3 evaluations for --max-evals 2


def test_the_guides_split():
    split = ppo_math.launcher_split(128, 11)
    assert (split.slots, split.per_agent, split.unused) == (117, 10, 7)
    assert split.line == "PPO: 11 agents, 117 evaluation nodes, 10 per agent (7 unused)"
    env = {"BALSAM_LAUNCHER_NODES": "128", "BALSAM_JOB_MODE": "mpi", "BALSAM_JOB_ID": "7"}
    args = argparse.Namespace(num_workers=None, evaluator="balsam", num_nodes_per_eval=None)
    assert plan_split(args, 11, 1, env) == split
    assert plan_split(argparse.Namespace(num_workers=5, evaluator="local"), 1, 2, {}).line == \
        "PPO: 2 agents, 5 evaluation workers, 2 per agent (1 unused)"
    assert plan_split(argparse.Namespace(num_workers=None, evaluator="local"), 1, 2, {}) is None
    with pytest.raises(UsageError, match="at least 22 nodes"):
        ppo_math.launcher_split(20, 11)


def test_num_agents_under_mpirun_is_the_number_of_ranks():
    assert agent_count(argparse.Namespace(num_agents=3), 1) == 3
    assert agent_count(argparse.Namespace(num_agents=None), 4) == 1
    with pytest.raises(UsageError, match="mpirun started 4 ranks"):
        agent_count(argparse.Namespace(num_agents=2), 4)
    with pytest.raises(UsageError, match="--num-agents must be at least 1, got 0"):
        agent_count(argparse.Namespace(num_agents=0), 1)


# ----------------------------------------------------------------------------- the search
@pytest.mark.tf
def test_agents_are_batch_synchronous_and_learn_from_their_own_episodes():
    require("tensorflow", _has_tf(), "pip install 'hpcnas[tf]'")
    from hpcnas.search.base import get_search_class

    search = get_search_class("nas", "ppo")(Problem, random_state=3, num_agents=2, noptepochs=2,
                                            network="ppo_lstm_32")
    first = search.ask(5)
    assert len(first) == 5 and [e["agent"] for e in search.round] == [0, 0, 0, 1, 1]
    assert search.ask(5) == []  # nothing new until the whole batch is told
    search.tell([(first[0], match(first[0])), ({"arch_seq": TARGET}, 8.0)])  # the second: not its own
    assert search.ask(5) == [] and not search.updates
    search.tell([(c, match(c)) for c in first[1:4]] + [(first[4], None)])  # a failure: the worst reward
    assert len(search.updates) == 1 and search.updates[0]["failed"] == 1
    assert search.best[1] == 8.0  # told results count for the best
    assert len(search.ask(5)) == 5


@pytest.mark.tf
def test_agents_learn_the_target():
    require("tensorflow", _has_tf(), "pip install 'hpcnas[tf]'")
    from hpcnas.search.base import get_search_class

    search = get_search_class("nas", "ppo")(Problem, random_state=0, num_agents=2, lr=0.01, noptepochs=4,
                                            network="ppo_lstm_32", ent_coef=0.0)
    means = []
    for _ in range(12):
        batch = search.ask(16)
        search.tell([(c, match(c)) for c in batch])
        means.append(np.mean([match(c) for c in batch]))
    assert np.mean(means[-3:]) > np.mean(means[:3]) + 1.0, means


@pytest.mark.parametrize("option, message", [
    (["--gamma", "1.5"], "--gamma must be between 0 and 1, got 1.5"),
    (["--noptepochs", "0"], "--noptepochs must be at least 1"),
    (["--num-agents", "0"], "--num-agents must be at least 1"),
    (["--network", "ppo_gru_8"], "invalid choice: 'ppo_gru_8'"),
])
def test_bad_options_are_one_line(option, message, capsys, tmp_path):
    code = main(["nas", "ppo", *PPO_ARGS, "--output-dir", str(tmp_path), "--max-evals", "2", *option])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_other_searches_do_not_import_tensorflow():
    code = ("import sys; from hpcnas.search.base import get_search_class, search_names; search_names('nas'); "
            "get_search_class('nas', 'ppo'); assert 'tensorflow' not in sys.modules, 'tf imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- MPI exchanges
STOP_SCRIPT = """
import numpy as np
from mpi4py import MPI
from hpcnas.search.nas.ppo_agents import MpiComm
comm = MpiComm(MPI.COMM_WORLD)
got = []
if comm.rank == 1:
    got.append(comm.average(np.full(3, 8.0), 2.0).tolist())  # 2 episodes of gradient 4
    comm.stop()  # ends after one exchange
else:
    for _ in range(3):
        avg = comm.average(np.full(3, 1.0), 1.0)
        got.append(None if avg is None else avg.tolist())
every = comm.comm.gather(got, root=0)
if comm.rank == 0:
    print(every, flush=True)
"""


@pytest.mark.mpi
def test_an_agent_that_stops_never_leaves_the_others_waiting():
    require("mpi4py", _has("mpi4py"), "pip install 'hpcnas[mpi]'")
    require("mpirun", shutil.which("mpirun") is not None, "MPICH mpirun on PATH")
    proc = subprocess.run(["mpirun", "-n", "2", sys.executable, "-c", STOP_SCRIPT], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # weighted mean (1 x 1 + 4 x 2) / 3 = 3 on both, then rank 0 sees the stop flag and stops exchanging
    assert proc.stdout.strip() == "[[[3.0, 3.0, 3.0], None, None], [[3.0, 3.0, 3.0]]]", proc.stdout


@pytest.mark.mpi
@pytest.mark.tf
def test_an_agent_that_fails_at_start_up_ends_the_others(tmp_path):
    require("tensorflow", _has_tf(), "pip install 'hpcnas[tf]'")
    require("mpi4py", _has("mpi4py"), "pip install 'hpcnas[mpi]'")
    require("mpirun", shutil.which("mpirun") is not None, "MPICH mpirun on PATH")
    argv = ["mpirun", "-n", "2", sys.executable, "-m", "hpcnas.search.nas.ppo", "--problem",
            "tests.support.ppo_problems.RankOneFails", "--run", "tests.support.ppo_problems.match", "--num-workers",
            "4", "--max-evals", "40", "--noptepochs", "1", "--network", "ppo_lstm_32", "--seed", "2",
            "--no-progress", "--evaluator", "local", "--output-dir", str(tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})
    assert "hpcnas: error: test: rank 1 cannot load its problem" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "another agent ended" in proc.stderr, proc.stderr[-3000:]  # agent 0 saw the stop flag ...
    import pandas as pd

    done = pd.read_csv(tmp_path / "agent0" / "results.csv")
    assert len(done) == 2 and (done["status"] == "DONE").all()  # ... after its first batch, kept
    assert len(pd.read_csv(tmp_path / "results.csv")) == 2


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _has_tf() -> bool:
    return _has("tensorflow")
