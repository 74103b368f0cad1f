"""Decentralized search (``--agents K``): the agents' plan and the reading of each other's results."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hpcnas.core.errors import UsageError
from hpcnas.core.mpi_env import RANK_VARS
from hpcnas.evaluator.base import EvalResult
from hpcnas.problem import HpProblem
from hpcnas.search.agents import PeerResults, plan, write_merged
from hpcnas.search.results_store import ResultsStore
from tests.support.toy import Problem

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _results(first: int, n: int) -> list[EvalResult]:
    return [EvalResult(f"j{first + i}", c, float(first + i), submit_time=1.0, start_time=1.0, end_time=2.0, worker="w")
            for i, c in enumerate(Problem.sample(n, first + 1))]


def test_an_agent_reads_each_result_of_the_others_once_and_only_complete_rows(tmp_path) -> None:
    peer = ResultsStore(str(tmp_path / "agent-1"), Problem)
    peer.append(_results(0, 3))
    own = ResultsStore(str(tmp_path / "agent-0"), Problem)
    own.append(_results(100, 2))  # its own rows are not "peer" results
    reader = PeerResults(str(tmp_path), 0, Problem, interval=0)
    assert [r.job_id for r in reader.poll()] == ["j0", "j1", "j2"]
    assert reader.poll() == []
    peer.append(_results(3, 1))
    peer.close()
    path = tmp_path / "agent-1" / "results.csv"
    whole = path.read_bytes()
    with open(path, "ab") as fh:  # a row being written: the reader waits for its end of line
        fh.write(b"adam,0.5,")
    assert [r.job_id for r in reader.poll()] == ["j3"]
    assert [r.objective for r in PeerResults(str(tmp_path), 0, Problem, interval=0).poll()] == [0.0, 1.0, 2.0, 3.0]
    (tmp_path / "repaired").write_bytes(whole)
    os.replace(tmp_path / "repaired", path)  # rewritten by its owner (a repair): read again from the start
    assert reader.poll() == []  # ... and nothing told twice
    assert reader._tails[str(path)].offset == len(whole)


def test_the_rows_of_all_agents_are_merged_with_their_agent(tmp_path) -> None:
    for index, first in ((0, 0), (1, 10)):
        store = ResultsStore(str(tmp_path / f"agent-{index}"), Problem)
        store.append(_results(first, 2))
        store.close()
    import pandas as pd

    merged = pd.read_csv(write_merged(str(tmp_path)))
    assert list(merged["job_id"]) == ["j0", "j1", "j10", "j11"] and list(merged["agent"]) == [0, 0, 1, 1]


def test_the_plan_shares_max_evals_exactly_and_seeds_each_agent(tmp_path) -> None:
    agents = [plan(3, i, str(tmp_path)) for i in range(3)]
    assert [a.share(10) for a in agents] == [4, 3, 3]
    assert [a.seed(7) for a in agents] == [7, 8, 9] and agents[0].seed(None) is None
    assert agents[2].output_dir == os.path.join(str(tmp_path), "agent-2")
    assert plan(None, None, str(tmp_path)) is None
    assert plan(4, None, str(tmp_path), {"PMI_RANK": "3"}).index == 3  # mpirun numbers the agents
    assert plan(2, None, str(tmp_path), {"SLURM_PROCID": "1"}).index == 1


@pytest.mark.parametrize("argv, message", [
    (["--agent-id", "0"], "--agent-id needs --agents K"),
    (["--agents", "2"], "--agents 2: give each process its --agent-id (0 to 1), or start them with mpirun -n 2"),
    (["--agents", "2", "--agent-id", "2"], "--agent-id must be from 0 to 1 (--agents 2), got 2"),
    (["--agents", "0"], "--agents must be at least 1, got 0"),
    (["--agents", "4", "--agent-id", "0", "--max-evals", "3"], "--max-evals 3 is fewer than the 4 agents"),
])
def test_bad_agent_options_are_one_line(tmp_path, argv, message) -> None:
    env = {k: v for k, v in os.environ.items() if k not in RANK_VARS}
    proc = subprocess.run(
        [sys.executable, "-m", "hpcnas.cli.main", "hps", "random", "--problem", "tests.support.toy.Problem",
         "--run", "tests.support.toy.run", "--output-dir", str(tmp_path), *argv],
        capture_output=True, text=True, env=dict(env, PYTHONPATH=ROOT), cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and message in proc.stderr
    assert not os.path.exists(tmp_path / "agent-0")


def test_plan_errors_are_usage_errors(tmp_path) -> None:
    with pytest.raises(UsageError):
        plan(2, -1, str(tmp_path))


Grid = HpProblem()
Grid.add_hyperparameter(["a", "b", "c", "d", "e", "f"], "cell")
Grid.add_hyperparameter([1, 2, 3, 4], "depth", ordinal=True)


def grid_run(config: dict) -> float:
    return float(config["depth"])


def test_an_agent_never_proposes_what_another_is_still_evaluating(tmp_path) -> None:
    from hpcnas.evaluator import create_evaluator
    from hpcnas.search.base import get_search_class
    from hpcnas.search.master import SearchMaster

    # agent 1 has claimed half of the 24 configurations and finished none of them
    claimed = [dict(c) for c in get_search_class("hps", "random")(Grid, random_state=7).ask(12)]
    os.makedirs(tmp_path / "agent-1")
    PeerResults(str(tmp_path), 1, Grid).claim(claimed)
    with open(tmp_path / "agent-1" / "claims.jsonl", "a") as fh:
        fh.write('{"cell": "z", "depth": 9}\n{"cell": "a", "dep')  # not of this space; a line being written
    peers = PeerResults(str(tmp_path), 0, Grid, interval=0)
    evaluator = create_evaluator("simulated", f"{__name__}.grid_run", num_workers=2)
    master = SearchMaster(Grid, get_search_class("hps", "random")(Grid, random_state=0), evaluator,
                          str(tmp_path / "agent-0"), 6, progress=False, peers=peers)
    df = master.run()
    evaluator.close()
    mine = {(c, int(d)) for c, d in zip(df["p:cell"], df["p:depth"])}
    assert len(mine) == 6
    assert mine.isdisjoint({(c["cell"], c["depth"]) for c in claimed})
    # ... and agent 0's own submissions are claimed in turn, for agent 1 to read
    back = PeerResults(str(tmp_path), 1, Grid)
    assert {(c["cell"], c["depth"]) for c in back.take_claims()} == mine
    assert back.take_claims() == []
