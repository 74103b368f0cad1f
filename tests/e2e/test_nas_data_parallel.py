"""Data-parallel run functions with real components: MirroredStrategy on 2 logical CPU devices,
and Horovod with 2 MPI ranks (its own environment: tests/install_horovod_env.sh)."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.support.components import require, require_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: where tests/install_horovod_env.sh builds it (HPCNAS_HOROVOD_PYTHON overrides both)
DEFAULT_HVD_PYTHONS = ("/opt/hpcnas/hvd-venv/bin/python",
                       os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                    ".hvd-venv", "bin", "python"))


def _run_json(cmd: list[str], env: dict, timeout: int = 300) -> list[dict]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return [json.loads(line[6:]) for line in proc.stdout.splitlines() if line.startswith("RESULT")]


@pytest.mark.e2e
@pytest.mark.tf
def test_mirrored_strategy_two_cpu_replicas_scaled_batch_and_lr():
    require_module("tensorflow", "tf")
    code = """
import json
from hpcnas.nas.problems.combo.problem import TinyProblem as P
P._fixed.update(lsr_batch_size=True, lsr_learning_rate=True, warmup_lr=True, warmup_epochs=1)
from hpcnas.nas.run.tf_distributed import run
print("RESULT" + json.dumps(run(P.make_config([1, 2, 3, 0, 1], {"batch_size": 64, "learning_rate": 0.005}))))
"""
    env = dict(os.environ, HPCNAS_TF_CPU_DEVICES="2", PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    (result,) = _run_json([sys.executable, "-c", code], env)
    assert result["num_replicas"] == 2 and len(result["devices"]) == 2
    assert result["batch_size"] == 128  # 64 per replica x 2 replicas
    assert result["steps_per_epoch"] == [4, 4]  # 480 training rows / global batch 128
    assert result["learning_rate"] == pytest.approx(0.01)
    assert result["history"]["lr"][-1] == pytest.approx(0.01, rel=1e-5)  # warm-up finished
    assert result["history"]["lr"][0] < 0.01
    assert math.isfinite(result["objective"])


def horovod_python() -> str:
    python = os.environ.get("HPCNAS_HOROVOD_PYTHON") or next(
        (p for p in DEFAULT_HVD_PYTHONS if os.path.exists(p)), DEFAULT_HVD_PYTHONS[0])
    ok = os.path.exists(python) and subprocess.run(
        [python, "-c", "import horovod.tensorflow.keras as h; assert h.mpi_built()"], capture_output=True, timeout=120
    ).returncode == 0
    require("Horovod environment", ok, f"{python} cannot import horovod with MPI: run tests/install_horovod_env.sh "
            "(README's test command does)")
    return python


HVD_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
import horovod.tensorflow.keras as hvd
hvd.init()
tf.random.set_seed(1000 + hvd.rank())  # different initial weights per rank: the broadcast must fix them
from hpcnas.nas.problems.combo.problem import TinyProblem as P
from hpcnas.nas.run.horovod import shard_indices, train
P._fixed.update(lsr_batch_size=True, lsr_learning_rate=True, warmup_lr=True, warmup_epochs=1, num_epochs=2)
config = P.make_config([3, 4, 1, 3, 1], {"batch_size": 32, "learning_rate": 0.005})
result = train(config)
model = result.pop("model")
np.savez(sys.argv[1] + f"/rank{hvd.rank()}.npz", *model.get_weights())
result["shard"] = shard_indices(480, hvd.rank(), hvd.size(), seed=P.seed).tolist()
print("RESULT" + json.dumps(result), flush=True)
"""


@pytest.mark.e2e
@pytest.mark.mpi
@pytest.mark.horovod
def test_horovod_two_ranks_end_with_identical_weights(tmp_path):
    python = horovod_python()
    require("mpirun", shutil.which("mpirun") is not None, "apt-get install mpich")
    script = tmp_path / "hvd_train.py"
    script.write_text(HVD_SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3", HOROVOD_CYCLE_TIME="1")
    results = _run_json(["mpirun", "-np", "2", python, str(script), str(tmp_path)], env, timeout=400)
    assert sorted(r["rank"] for r in results) == [0, 1]
    r0, r1 = sorted(results, key=lambda r: r["rank"])
    # each rank trained on its own half of the data ...
    assert len(r0["shard"]) == len(r1["shard"]) == 240 and not set(r0["shard"]) & set(r1["shard"])
    assert r0["per_rank_batch_size"] == 32 and r0["batch_size"] == 64 and r0["steps_per_epoch"] == [8, 8]
    assert r0["learning_rate"] == pytest.approx(0.01) and r0["history"]["lr"][-1] == pytest.approx(0.01, rel=1e-5)
    # ... yet both end with the same weights (broadcast of initial weights + averaged gradients)
    w0, w1 = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    assert len(w0.files) == len(w1.files) > 0
    for key in w0.files:
        np.testing.assert_allclose(w0[key], w1[key], rtol=0, atol=1e-6)
    # only rank 0 computes the validation metrics; its objective is broadcast to every rank
    assert "val_r2" in r0["history"] and "val_r2" not in r1["history"]
    assert r0["objective"] == r1["objective"] and math.isfinite(r0["objective"])
