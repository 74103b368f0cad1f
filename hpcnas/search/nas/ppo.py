"""``hpcnas nas ppo``: reinforcement-learning NAS with PPO agents (DeepHyper's ``PPO`` Balsam app).

Each agent's LSTM policy (:mod:`hpcnas.search.nas.ppo_policy`) writes architectures one decision
at a time; an architecture is an episode whose only reward, at its last step, is the evaluation's
objective (a failed evaluation: the lowest objective seen so far). Agents are batch-synchronous: an
agent proposes as many architectures as it has workers, waits for all of them, then updates its
policy with PPO (clipped objective, GAE(``gamma``, ``lam``), entropy bonus) on gradients averaged
over all agents (:mod:`hpcnas.search.nas.ppo_agents`), so every agent keeps the same weights.

``--num-agents N`` runs N agents in one process; under ``mpirun`` (the Balsam app in ``mpi`` job
mode, ``--num-nodes 11``: 11 ranks) every rank is an agent with its own evaluator and workers
(:mod:`hpcnas.search.nas.ppo_cli`). Training hyper-parameters are held at their defaults, as in
``nas age``; the problem's starting points and results told from elsewhere (resume,
``--warm-start``) count for the best result but the policy learns only from its own episodes.
TensorFlow is imported at the first ask, never by the other searches.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

import numpy as np

from hpcnas.core.errors import MissingExtraError, UsageError
from hpcnas.problem.na_problem import ARCH_KEY
from hpcnas.search.base import Config, Search, register_search
from hpcnas.search.nas._views import check_na_problem, default_hyperparameters
from hpcnas.search.nas import ppo_math

log = logging.getLogger(__name__)

NETWORKS = tuple(f"ppo_{kind}_{units}" for units in (128, 64, 32) for kind in ("lstm", "lnlstm"))


@register_search("nas", "ppo")
class PPO(Search):
    """Synchronous PPO agents with LSTM policies over the architecture sequence."""

    def __init__(
        self, problem: Any, random_state: int | None = None, network: str = "ppo_lstm_128", cliprange: float = 0.2,
        ent_coef: float = 0.01, gamma: float = 1.0, lam: float = 0.95, nminibatches: int = 1, noptepochs: int = 10,
        lr: float = 1e-3, num_agents: int = 1, comm: Any = None, first_agent: int = 0,
        policy_seed: int | None = None, **kwargs: Any,
    ) -> None:
        check_na_problem(problem)
        super().__init__(problem, random_state, **kwargs)
        _check_options(network, cliprange, ent_coef, gamma, lam, nminibatches, noptepochs, lr, num_agents)
        import importlib.util

        if importlib.util.find_spec("tensorflow") is None:  # before anything runs; imported at the first ask
            raise MissingExtraError("the PPO policy needs TensorFlow: pip install 'hpcnas[tf]'")
        self.network, self.cliprange, self.ent_coef = network, float(cliprange), float(ent_coef)
        self.gamma, self.lam, self.lr = float(gamma), float(lam), float(lr)
        self.nminibatches, self.noptepochs = int(nminibatches), int(noptepochs)
        from hpcnas.search.nas.ppo_agents import LocalComm

        self.comm = comm if comm is not None else LocalComm()
        self.num_agents = int(num_agents)  # agents in this process
        self.first_agent = int(first_agent)  # global index of the first one
        seed = random_state if random_state is not None else int(self.rng.integers(0, 2**31 - 1))
        self.policy_seed = int(policy_seed if policy_seed is not None else seed) % (2**31 - 1)
        self.agent_rngs = [np.random.default_rng([seed, self.first_agent + a]) for a in range(self.num_agents)]
        self.sizes = list(problem.arch_space.choice_sizes)
        self._fixed = default_hyperparameters(problem)
        self.policy: Any = None
        self.round: list[dict[str, Any]] | None = None  # the episodes in flight
        self.capacity: int | None = None  # episodes per round (agents x workers per agent), when capped
        self.updates: list[dict[str, Any]] = []  # one row per policy update
        self.worst: float | None = None  # the lowest objective seen: the reward of a failed evaluation
        self.stopped = False

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--num-agents", dest="num_agents", type=int,
                            help="PPO agents (default 1; under mpirun: one per rank, the number of ranks)")
        parser.add_argument("--network", choices=NETWORKS, default="ppo_lstm_128",
                            help="policy-value network: LSTM (lnlstm: layer-normalised) of 128, 64 or 32 units")
        parser.add_argument("--cliprange", type=float, default=0.2, help="PPO clipping parameter (default 0.2)")
        parser.add_argument("--ent-coef", dest="ent_coef", type=float, default=0.01,
                            help="entropy bonus: more explores more (default 0.01)")
        parser.add_argument("--gamma", type=float, default=1.0, help="discount factor of the rewards (default 1.0)")
        parser.add_argument("--lam", type=float, default=0.95, help="GAE lambda of the advantages (default 0.95)")
        parser.add_argument("--nminibatches", type=int, default=1,
                            help="minibatches (of architectures) per optimisation epoch (default 1)")
        parser.add_argument("--noptepochs", type=int, default=10,
                            help="optimisation epochs over each batch of architectures (default 10)")
        parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")

    @staticmethod
    def run_command(family: str, name: str, args: argparse.Namespace, search_dests: list[str],
                    evaluator_dests: list[str]) -> int:
        """The command line runs the agents (:func:`hpcnas.search.nas.ppo_cli.run`)."""
        from hpcnas.search.nas.ppo_cli import run

        return run(family, name, args, search_dests, evaluator_dests)

    # ----------------------------------------------------------------- ask / tell
    def _ask(self, n: int) -> list[Config]:
        if self.stopped or self.round is not None:
            return []  # synchronous: the next batch once this one is told
        if self.capacity is not None:
            n = min(n, self.capacity)
        if n <= 0:
            return []
        if self.policy is None:
            from hpcnas.search.nas.ppo_policy import Policy

            self.policy = Policy(self.sizes, self.network, self.lr, self.policy_seed)
        counts = [n // self.num_agents + (a < n % self.num_agents) for a in range(self.num_agents)]
        self.round, configs = [], []
        for agent, count in enumerate(counts):
            if count == 0:
                continue
            actions, logp, values = self.policy.sample(count, self.agent_rngs[agent])
            for i in range(count):
                arch = [int(v) for v in actions[i]]
                self.round.append({"agent": agent, "actions": actions[i], "logp": logp[i], "values": values[i],
                                   "key": _arch_key(arch), "objective": None, "told": False})
                configs.append(self.problem.make_config(arch, dict(self._fixed)))
        return configs

    def _tell(self, results: list[tuple[Config, float | None]]) -> None:
        for config, objective in results:
            if objective is not None:
                self.worst = objective if self.worst is None else min(self.worst, objective)
            if self.round is None or ARCH_KEY not in config:
                continue
            key = _arch_key(config[ARCH_KEY])
            episode = next((e for e in self.round if e["key"] == key and not e["told"]), None)
            if episode is not None:  # else: resumed, warm-started or a starting point
                episode["told"], episode["objective"] = True, objective
        if self.round is not None and all(e["told"] for e in self.round):
            self._update()
            self.round = None

    def close(self) -> None:
        self.stopped = True
        self.comm.stop()

    # ----------------------------------------------------------------- learning
    def _update(self) -> None:
        started = time.monotonic()
        episodes = self.round or []
        failure = self.worst if self.worst is not None else 0.0
        rewards = ppo_math.episode_rewards([e["objective"] for e in episodes], len(self.sizes), failure)
        values = np.array([e["values"] for e in episodes])
        advantages, returns = ppo_math.gae(rewards, values, self.gamma, self.lam)
        actions = np.array([e["actions"] for e in episodes])
        logp = np.array([e["logp"] for e in episodes])
        agents = np.array([e["agent"] for e in episodes])
        own = [np.flatnonzero(agents == a) for a in range(self.num_agents)]
        stats: dict[str, float] = {}
        for _ in range(self.noptepochs):
            parts = [[idx[p] for p in ppo_math.minibatches(len(idx), self.nminibatches, self.agent_rngs[a])]
                     for a, idx in enumerate(own)]
            for m in range(self.nminibatches):
                grad_sum, weight = self.policy.zero_gradient(), 0.0
                for a in range(self.num_agents):  # each agent's gradient on its own minibatch
                    mb = parts[a][m]
                    if len(mb) == 0:
                        continue
                    grad, stats = self.policy.gradients(actions[mb], logp[mb], ppo_math.normalise(advantages[mb]),
                                                        returns[mb], self.cliprange, self.ent_coef)
                    grad_sum += len(mb) * grad
                    weight += len(mb)
                average = self.comm.average(grad_sum, weight)
                if average is None:
                    self._stop_seen()
                    return
                self.policy.apply(average)
        objectives = [e["objective"] for e in episodes if e["objective"] is not None]
        row = {"update": len(self.updates) + 1, "agent": self.first_agent, "episodes": len(episodes),
               "failed": len(episodes) - len(objectives),
               "mean_objective": float(np.mean(objectives)) if objectives else None,
               "best_objective": float(np.max(objectives)) if objectives else None,
               "entropy": stats.get("entropy"), "loss": stats.get("loss"), "checksum": self.policy.checksum(),
               "seconds": round(time.monotonic() - started, 3)}
        self.updates.append(row)
        log.info("PPO agent %d: update %d on %d architecture(s), mean objective %s, weights %s",
                 self.first_agent, row["update"], row["episodes"],
                 "n/a" if row["mean_objective"] is None else f"{row['mean_objective']:.6g}", row["checksum"])

    def _stop_seen(self) -> None:
        self.stopped = True
        log.info("PPO agent %d: another agent ended; this agent ends too after %d update(s)",
                 self.first_agent, len(self.updates))


def _arch_key(arch: Any) -> str:
    return json.dumps([int(v) for v in arch])


def _check_options(network: str, cliprange: float, ent_coef: float, gamma: float, lam: float, nminibatches: int,
                   noptepochs: int, lr: float, num_agents: int) -> None:
    if network not in NETWORKS:
        raise UsageError(f"--network {network!r} is not a PPO network: choose one of {', '.join(NETWORKS)}")
    checks = [
        ("--cliprange", cliprange, 0 < cliprange < 1, "between 0 and 1 (0.2 is usual)"),
        ("--ent-coef", ent_coef, ent_coef >= 0, "at least 0"),
        ("--gamma", gamma, 0 <= gamma <= 1, "between 0 and 1"),
        ("--lam", lam, 0 <= lam <= 1, "between 0 and 1"),
        ("--nminibatches", nminibatches, nminibatches >= 1, "at least 1"),
        ("--noptepochs", noptepochs, noptepochs >= 1, "at least 1"),
        ("--lr", lr, 0 < lr < 1, "between 0 and 1 (1e-3 is usual)"),
        ("--num-agents", num_agents, num_agents >= 1, "at least 1"),
    ]
    for option, value, ok, expected in checks:
        if not ok:  # nan fails every comparison
            raise UsageError(f"{option} must be {expected}, got {value}")


if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    sys.exit(module_main("nas", "ppo"))
