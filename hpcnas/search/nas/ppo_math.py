"""The arithmetic of PPO NAS without TensorFlow: rewards, GAE advantages, minibatches, the worker split.

An *episode* is one architecture: step ``t`` chooses the value of decision ``t`` of the NAS space;
every reward is 0 except the last one, the evaluation's objective (DeepHyper's NAS environment).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hpcnas.core.errors import UsageError


def gae(rewards: np.ndarray, values: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation of episodes ``[batch, steps]`` that all end at their last step.

    ``delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)`` (``V = 0`` after the last step) and
    ``A_t = delta_t + gamma * lam * A_{t+1}``; returns ``(advantages, returns = advantages + values)``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if rewards.shape != values.shape or rewards.ndim != 2:
        raise ValueError(f"rewards {rewards.shape} and values {values.shape} must be the same [batch, steps]")
    steps = rewards.shape[1]
    advantages = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[0])
    for t in reversed(range(steps)):
        next_value = values[:, t + 1] if t + 1 < steps else 0.0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last
        advantages[:, t] = last
    return advantages, advantages + values


def episode_rewards(objectives: Sequence[float | None], steps: int, failure_reward: float) -> np.ndarray:
    """``[batch, steps]`` rewards: the objective at the last step (``failure_reward`` when it failed)."""
    rewards = np.zeros((len(objectives), steps))
    rewards[:, -1] = [failure_reward if y is None else float(y) for y in objectives]
    return rewards


def normalise(advantages: np.ndarray) -> np.ndarray:
    """Advantages to mean 0, standard deviation 1 (as OpenAI baselines' ppo2 does per minibatch)."""
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def minibatches(num_episodes: int, nminibatches: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``nminibatches`` groups of episode indices (shuffled; some empty when there are fewer episodes):
    always the same number, so that every agent takes the same number of synchronised steps."""
    order = rng.permutation(num_episodes)
    return [np.asarray(part, dtype=int) for part in np.array_split(order, nminibatches)]


def clipped_surrogate(ratio: np.ndarray, advantages: np.ndarray, cliprange: float) -> np.ndarray:
    """PPO's clipped objective per step, ``min(r A, clip(r, 1-eps, 1+eps) A)`` (numpy reference of the
    TensorFlow loss in :mod:`hpcnas.search.nas.ppo_policy`)."""
    return np.minimum(ratio * advantages, np.clip(ratio, 1.0 - cliprange, 1.0 + cliprange) * advantages)


@dataclass(frozen=True)
class WorkerSplit:
    """Evaluation slots shared equally by the agents; the remainder is left unused."""

    agents: int
    slots: int
    per_agent: int
    unused: int
    what: str = "evaluation workers"

    @property
    def line(self) -> str:
        agents = f"{self.agents} agent" + ("s" if self.agents != 1 else "")
        return f"PPO: {agents}, {self.slots} {self.what}, {self.per_agent} per agent ({self.unused} unused)"


def split_workers(agents: int, slots: int, what: str = "evaluation workers") -> WorkerSplit:
    """``slots // agents`` each (the guide: 117 evaluation nodes, 11 agents -> 10 each, 7 unused)."""
    if agents < 1:
        raise UsageError(f"--num-agents must be at least 1, got {agents}")
    per_agent = slots // agents
    if per_agent < 1:
        raise UsageError(
            f"{slots} {what} cannot be shared by {agents} PPO agents (each needs at least one): "
            f"give more workers (--num-workers) or fewer agents"
        )
    return WorkerSplit(agents, slots, per_agent, slots - per_agent * agents, what)


def launcher_split(launcher_nodes: int, search_nodes: int, nodes_per_eval: int = 1,
                   agents: int | None = None) -> WorkerSplit:
    """A search job of ``search_nodes`` nodes (one agent per node) inside a launcher of ``launcher_nodes``:
    the other nodes run evaluations (DeepHyper: ``(BALSAM_LAUNCHER_NODES - ranks) // ranks`` each)."""
    agents = search_nodes if agents is None else agents
    free = launcher_nodes - search_nodes
    if free < nodes_per_eval * agents:
        raise UsageError(
            f"no room for evaluations: the launcher has {launcher_nodes} node(s), the PPO search job takes "
            f"{search_nodes} and each of its {agents} agent(s) needs {nodes_per_eval} more: ask the launcher "
            f"for at least {search_nodes + nodes_per_eval * agents} nodes"
        )
    slots = free // nodes_per_eval
    what = "evaluation nodes" if nodes_per_eval == 1 else f"evaluations of {nodes_per_eval} nodes"
    return split_workers(agents, slots, what)


def share_evals(max_evals: int, agents: int, rank: int) -> int:
    """Agent ``rank``'s share of ``--max-evals``: equal shares, the first ``max_evals % agents``
    agents one more, so that the shares add up to ``max_evals`` exactly."""
    from hpcnas.search.agents import share_evals as share

    return share(max_evals, agents, rank, "PPO agents")
