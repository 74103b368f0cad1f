"""AgEBO on the combo-like problem (small data), 30 real trainings with the local evaluator."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.support.components import require_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBLEM = "hpcnas.nas.problems.combo.problem.TinyProblem"


@pytest.mark.e2e
@pytest.mark.tf
def test_agebo_local_30_evaluations(tmp_path):
    require_module("tensorflow", "tf")
    out = tmp_path / "agebo"
    cmd = [sys.executable, "-m", "hpcnas.search.nas.agebo", "--problem", PROBLEM, "--run", "hpcnas.nas.run.alpha.run",
           "--max-evals", "30", "--num-workers", "2", "--seed", "1", "--population-size", "10", "--sample-size", "3",
           "--kappa", "0.001", "--output-dir", str(out), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=480, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 30
    assert [c for c in df.columns if c.startswith("p:")] == ["p:arch_seq", "p:batch_size", "p:learning_rate"]
    assert (df["status"] == "DONE").sum() >= 28, df[df["status"] != "DONE"]["error"].tolist()
    from hpcnas.nas.problems.combo.problem import TinyProblem

    archs = [json.loads(a) for a in df["p:arch_seq"]]
    for arch in archs:
        assert TinyProblem.arch_space.validate(arch) == arch
    assert len({tuple(a) for a in archs}) >= 15
    ok = df[df["status"] == "DONE"]
    assert all(math.isfinite(v) for v in ok["objective"])
    assert ok["objective"].max() > 0.2  # val_r2 of the best small model on the synthetic data
    assert ok["p:batch_size"].between(16, 128).all() and ok["p:learning_rate"].between(1e-3, 5e-2).all()
    meta = json.loads((out / "search.json").read_text())
    assert meta["problem"]["kind"] == "na" and meta["search"] == "agebo"
