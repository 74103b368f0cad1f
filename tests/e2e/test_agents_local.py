"""Decentralized search with real processes: agents share every result through OUTPUT/agent-I."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT)
LIMIT = 300


def _argv(out, agent: int, max_evals: int = 20, run: str = "tests.support.toy.run") -> list[str]:
    return [sys.executable, "-m", "hpcnas.cli.main", "hps", "ambs", "--problem", "tests.support.toy.Problem",
            "--run", run, "--max-evals", str(max_evals), "--num-workers", "2", "--seed", "5",
            "--agents", "2", "--agent-id", str(agent), "--output-dir", str(out), "--no-progress"]


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_second_agent_learns_the_first_ones_results_and_each_resumes_its_own(tmp_path) -> None:
    first = subprocess.run(_argv(tmp_path, 0), capture_output=True, text=True, env=ENV, timeout=LIMIT)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "10 evaluations, 0 more told by the other agents" in first.stdout
    second = subprocess.run(_argv(tmp_path, 1), capture_output=True, text=True, env=ENV, timeout=LIMIT)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "10 evaluations, 10 more told by the other agents" in second.stdout
    own = [_rows(tmp_path / f"agent-{i}" / "results.csv") for i in (0, 1)]
    assert [len(rows) for rows in own] == [10, 10]
    keys = {tuple(sorted((k, v) for k, v in r.items() if k.startswith("p:"))) for rows in own for r in rows}
    assert len(keys) == 20  # agent 1 proposed none of agent 0's configurations again
    merged = _rows(tmp_path / "results.csv")
    assert len(merged) == 20 and len({r["job_id"] for r in merged}) == 20
    assert sorted({r["agent"] for r in merged}) == ["0", "1"]
    again = subprocess.run(_argv(tmp_path, 1), capture_output=True, text=True, env=ENV, timeout=LIMIT)
    assert again.returncode == 0 and "10 evaluations (10 resumed)" in again.stdout, again.stdout + again.stderr
    assert len(_rows(tmp_path / "agent-1" / "results.csv")) == 10  # nothing evaluated twice


def test_two_agents_at_once_finish_exactly_max_evals(tmp_path) -> None:
    procs = [subprocess.Popen(_argv(tmp_path, i, 30, "tests.support.toy.slow_run"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for i in (0, 1)]
    outs = [p.communicate(timeout=LIMIT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    rows = [r for i in (0, 1) for r in _rows(tmp_path / f"agent-{i}" / "results.csv")]
    assert len(rows) == 30 and len({r["job_id"] for r in rows}) == 30
    assert all(r["status"] == "DONE" for r in rows)
