"""Decentralized search: several agents, each a search master of its own, sharing every result.

One master process caps how fast a search can ask and tell. With ``--agents K`` the same
command is started K times (``mpirun -n K`` / ``srun -n K`` give each its rank, or
``--agent-id I``), and each process drives its own evaluator and workers:

* agent ``I`` keeps its own output directory ``OUTPUT/agent-I`` (its ``results.csv``,
  ``search.json``, logs and lock), so it resumes exactly as a single search does, and its
  evaluations are its own jobs (the Balsam evaluator recovers only the jobs of its directory);
* it evaluates its share of ``--max-evals`` (equal shares, the first ``max_evals % K`` one
  more), so the agents together finish exactly ``--max-evals`` without talking to each other;
* it reads the other agents' ``results.csv`` files as they grow (:class:`PeerResults`, at most
  every ``interval`` seconds, only the bytes added since the last read) and tells its search
  every result it finds there, so each model learns from all the evaluations. A configuration
  told this way is never proposed again by that agent, so finished evaluations are not repeated;
* it appends every configuration it submits to ``OUTPUT/agent-I/claims.jsonl`` (one JSON object
  per line) and reads the other agents' claims before each ask, so that no agent proposes a
  configuration another one is still evaluating (:meth:`hpcnas.search.base.Search.exclude`).
  Two agents that ask at the same moment can still pick the same point; a claim of an agent
  that died stays excluded;
* its seed is ``--seed + I``, so the agents explore differently from the start;
* when it ends, it writes every agent's rows so far into ``OUTPUT/results.csv`` (the agent that
  ends last writes them all), the file ``hpcnas-analytics`` reads.

No process is central: an agent that dies stops only its own share, and the same command
started again resumes it.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hpcnas.core.errors import HpcnasError, UsageError
from hpcnas.core.mpi_env import launcher_rank
from hpcnas.evaluator.base import EvalResult

log = logging.getLogger(__name__)

AGENT_DIR = "agent-{}"
#: an agent's submitted configurations, one JSON object per line
CLAIMS = "claims.jsonl"
#: seconds between two reads of the other agents' results
POLL_INTERVAL = 0.5


@dataclass(frozen=True)
class AgentPlan:
    """Which agent this process is, of how many, under which output directory."""

    index: int
    count: int
    root: str

    @property
    def output_dir(self) -> str:
        return os.path.join(self.root, AGENT_DIR.format(self.index))

    def share(self, max_evals: int) -> int:
        """This agent's share of ``max_evals``."""
        return share_evals(max_evals, self.count, self.index, "agents")

    def seed(self, seed: int | None) -> int | None:
        return None if seed is None else seed + self.index


def share_evals(max_evals: int, agents: int, index: int, what: str = "agents") -> int:
    """Agent ``index``'s share of ``--max-evals``: equal shares, the first ``max_evals % agents``
    agents one more, so that the shares add up to ``max_evals`` exactly (``what``: the agents'
    name in the error)."""
    if max_evals < agents:
        raise UsageError(f"--max-evals {max_evals} is fewer than the {agents} {what}: give at least {agents} "
                         "(each agent evaluates its share of --max-evals)")
    return max_evals // agents + (1 if index < max_evals % agents else 0)


def plan(agents: int | None, agent_id: int | None, output_dir: str,
         environ: Mapping[str, str] | None = None) -> AgentPlan | None:
    """The :class:`AgentPlan` of ``--agents`` / ``--agent-id`` (``None``: one central master)."""
    if agents is None:
        if agent_id is not None:
            raise UsageError("--agent-id needs --agents K (the number of agents of the search)")
        return None
    if agents < 1:
        raise UsageError(f"--agents must be at least 1, got {agents}")
    if agent_id is None:
        env = os.environ if environ is None else environ
        rank = launcher_rank(env)
        if agents > 1 and rank is None:
            raise UsageError(f"--agents {agents}: give each process its --agent-id (0 to {agents - 1}), or start "
                             f"them with mpirun -n {agents} / srun -n {agents}, which number them")
        agent_id = rank or 0
    if not 0 <= agent_id < agents:
        raise UsageError(f"--agent-id must be from 0 to {agents - 1} (--agents {agents}), got {agent_id}")
    return AgentPlan(agent_id, agents, os.path.abspath(output_dir))


@dataclass
class _Tail:
    """What was read of one peer's file: its inode, the bytes read, its header line (CSV)."""

    inode: int = -1
    offset: int = 0
    header: bytes = b""
    broken: bool = False


@dataclass
class PeerResults:
    """The results the other agents under ``root`` have recorded, read as their files grow."""

    root: str
    own: int
    problem: Any
    objectives: Sequence[str] = ()
    interval: float = POLL_INTERVAL
    _tails: dict[str, _Tail] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    _last: float = float("-inf")
    _claim_failed: bool = False

    def __post_init__(self) -> None:
        from hpcnas.evaluator.base import PARAM_PREFIX
        from hpcnas.search.results_store import parameter_names

        names = parameter_names(self.problem)
        self._params = [PARAM_PREFIX + n for n in names] if names is not None else None  # the p: columns

    def poll(self, force: bool = False) -> list[EvalResult]:
        """Results recorded by the other agents since the last call (each once)."""
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return []
        self._last = now
        fresh: list[EvalResult] = []
        for path in self._peer_files("results.csv"):
            for result in self._read(path):
                if result.job_id not in self._seen:
                    self._seen.add(result.job_id)
                    fresh.append(result)
        return fresh

    def take_claims(self) -> list[dict[str, Any]]:
        """Configurations the other agents submitted since the last call. Read at every call (a
        ``stat`` per agent when nothing is new), not every ``interval``: the master calls it before
        each ask, so only agents asking within the same moment can pick the same point."""
        claims: list[dict[str, Any]] = []
        for path in self._peer_files(CLAIMS):
            claims.extend(self._read_claims(path))
        return claims

    def claim(self, configs: Sequence[Mapping[str, Any]]) -> None:
        """Record configurations this agent submits, for the others to exclude."""
        path = os.path.join(self.root, AGENT_DIR.format(self.own), CLAIMS)
        lines = "".join(json.dumps(dict(c), sort_keys=True, default=str) + "\n" for c in configs)
        try:
            with open(path, "a", encoding="utf-8") as fh:  # one write per batch: whole lines
                fh.write(lines)
        except OSError as err:
            if not self._claim_failed:
                self._claim_failed = True
                log.warning("claims not written, other agents may repeat this agent's running "
                            "configurations: %s", err)

    def _peer_files(self, name: str) -> list[str]:
        own = os.path.join(self.root, AGENT_DIR.format(self.own))
        paths = glob.glob(os.path.join(self.root, AGENT_DIR.format("*"), name))
        return sorted(p for p in paths if os.path.dirname(p) != own)

    def _new_lines(self, path: str) -> bytes:
        """The complete lines added to ``path`` since the last read (all of it if rewritten)."""
        tail = self._tails.setdefault(path, _Tail())
        try:
            st = os.stat(path)
            if st.st_ino != tail.inode or st.st_size < tail.offset:  # rewritten (repaired, widened)
                tail.inode, tail.offset, tail.header, tail.broken = st.st_ino, 0, b"", False
            if tail.broken or st.st_size == tail.offset:
                return b""
            with open(path, "rb") as fh:
                fh.seek(tail.offset)
                chunk = fh.read(st.st_size - tail.offset)
        except OSError:
            return b""
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits for its end
        tail.offset += len(complete)
        return complete

    def _read_claims(self, path: str) -> list[dict[str, Any]]:
        claims = []
        for line in self._new_lines(path).splitlines():
            try:
                config = json.loads(line)
            except ValueError:
                continue  # a damaged line excludes nothing
            if isinstance(config, dict):
                claims.append(config)
        return claims

    def _read(self, path: str) -> list[EvalResult]:
        complete = self._new_lines(path)
        if not complete:
            return []
        tail = self._tails[path]
        if not tail.header:
            end = complete.find(b"\n") + 1
            tail.header, complete = complete[:end], complete[end:]
        if not complete:
            return []
        from hpcnas.search.results_reader import RowReader

        try:
            return RowReader(path, self.problem, self._params, self.objectives).read(tail.header + complete).results
        except HpcnasError as err:
            tail.broken = True  # the owner repairs its file; read it again once rewritten
            log.warning("results of another agent left out: %s", err)
            return []


def write_merged(root: str) -> str | None:
    """Every agent's rows so far in ``root/results.csv`` (replaced at once); its path, or None."""
    import pandas as pd

    frames = []
    for path in sorted(glob.glob(os.path.join(root, AGENT_DIR.format("*"), "results.csv"))):
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
            continue
        frame.insert(len(frame.columns), "agent", os.path.basename(os.path.dirname(path)).split("-", 1)[1])
        frames.append(frame)
    if not frames:
        return None
    merged = pd.concat(frames, ignore_index=True, sort=False).fillna("")
    target = os.path.join(root, "results.csv")
    partial = f"{target}.{os.getpid()}.tmp"
    merged.to_csv(partial, index=False)
    os.replace(partial, target)
    return target


__all__ = ["AgentPlan", "PeerResults", "plan", "write_merged"]
