"""Objective extraction, validation metrics, and the single-process (alpha) run function."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.nas.training import objective_from_history, validation_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_objective_last_max_and_sign():
    history = {"val_r2": [0.1, 0.5, 0.3], "val_loss": [3.0, 1.0, 2.0]}
    assert objective_from_history(history, "val_r2") == 0.3
    assert objective_from_history(history, "val_r2__max") == 0.5
    assert objective_from_history(history, "-val_loss") == -2.0
    assert objective_from_history(history, "-val_loss__max") == -1.0
    assert math.isnan(objective_from_history({"val_r2": [float("nan")]}, "val_r2"))
    assert objective_from_history({"val_r2": [0.2, float("nan")]}, "val_r2__max") == 0.2
    with pytest.raises(HpcnasError, match="add it to Problem.metrics"):
        objective_from_history(history, "val_auc")


def test_validation_metrics_values():
    y = np.array([[1.0], [2.0], [3.0], [4.0]])
    assert validation_metrics(["r2", "mse", "mae"], y, y) == {"val_r2": 1.0, "val_mse": 0.0, "val_mae": 0.0}
    assert validation_metrics(["r2"], y, np.full_like(y, 2.5))["val_r2"] == pytest.approx(0.0)
    labels = np.array([[0.0], [1.0], [1.0], [0.0]])
    probs = np.array([[0.2], [0.9], [0.4], [0.1]])
    out = validation_metrics(["acc", "auc"], labels, probs)
    assert out["val_acc"] == 0.75 and out["val_auc"] == 1.0


@pytest.mark.tf
def test_alpha_run_trains_honours_threads_and_warmup():
    from tests.support.components import require_module

    require_module("tensorflow", "tf")
    code = """
import json, os
import tensorflow as tf
from hpcnas.nas.problems.combo.problem import TinyProblem as P
P._fixed.update(warmup_lr=True, warmup_epochs=1, num_epochs=2, num_threads=None)
from hpcnas.nas.run.alpha import run
config = P.make_config([1, 2, 3, 0, 1], {"batch_size": 32, "learning_rate": 0.01})
result = run(config)
result["intra"] = tf.config.threading.get_intra_op_parallelism_threads()
result["kmp"] = os.environ.get("KMP_BLOCKTIME")
from hpcnas.nas.problems.attn.problem import TinyProblem as A
result["attn"] = run(A.make_config([4, 4, 1], {"batch_size": 32, "learning_rate": 0.01}))
print("RESULT" + json.dumps(result))
"""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KMP_BLOCKTIME", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    history = result["history"]
    assert result["objective"] == history["val_r2"][-1] and math.isfinite(result["objective"])
    assert result["num_replicas"] == 1 and result["batch_size"] == 32
    assert result["steps_per_epoch"] == [15, 15]  # 480 training rows / 32
    assert result["intra"] == 1 and result["kmp"] == "0"
    # warm-up: the last batch of epoch 0 ran at 0.001 + 0.009 * 14/15; epoch 1 at the target
    assert history["lr"][0] == pytest.approx(0.001 + 0.009 * 14 / 15, rel=1e-4)
    assert history["lr"][1] == pytest.approx(0.01, rel=1e-5)
    assert history["val_loss"][-1] < 1.5
    attn = result["attn"]  # binary classification: sigmoid output, val_auc objective (max over epochs)
    assert attn["objective"] == max(attn["history"]["val_auc"]) and 0.5 < attn["objective"] <= 1.0
    assert 0.0 <= attn["history"]["val_acc"][-1] <= 1.0


@pytest.mark.tf
def test_make_optimizer_names_and_errors():
    from tests.support.components import require_module

    require_module("tensorflow", "tf")
    from hpcnas.nas.keras_compat import get_keras, make_optimizer

    keras = get_keras()
    assert type(make_optimizer(keras, "Adam", 0.01)).__name__ == "Adam"
    with pytest.raises(HpcnasError, match="unknown optimizer 'adamx'.*sgd"):
        make_optimizer(keras, "adamx", 0.01)


def test_horovod_shards_and_balsam_resources():
    from hpcnas.nas.run.horovod import resources, run, shard_indices

    shards = [shard_indices(101, r, 4, seed=3) for r in range(4)]
    assert all(len(s) == 25 for s in shards)  # equal sizes: every rank runs the same number of steps
    assert len(set(np.concatenate(shards))) == 100
    assert np.array_equal(shards[1], shard_indices(101, 1, 4, seed=3))
    assert resources({"num_ranks": 2}) == {"num_nodes": 1, "ranks_per_node": 2}
    assert resources({}) == {"num_nodes": 1, "ranks_per_node": 1}
    assert run.resources is resources
