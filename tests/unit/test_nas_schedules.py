"""Linear scaling rule and learning-rate warm-up, checked numerically."""
from __future__ import annotations

import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.nas.schedules import (
    WARMUP_START_FACTOR, global_batch_size, make_plan, per_replica_batch_size, scaled_learning_rate,
    warmup_learning_rate,
)


def test_linear_scaling_rule_on_two_gpus():
    plan = make_plan({"batch_size": 256, "learning_rate": 0.001, "lsr_batch_size": True, "lsr_learning_rate": True}, 2)
    assert plan.learning_rate == pytest.approx(0.002)
    assert plan.global_batch_size == 512 and plan.per_replica_batch_size == 256


def test_lsr_is_opt_in_per_hyperparameter():
    only_bs = make_plan({"batch_size": 256, "learning_rate": 0.001, "lsr_batch_size": True}, 4)
    assert (only_bs.global_batch_size, only_bs.learning_rate) == (1024, 0.001)
    only_lr = make_plan({"batch_size": 256, "learning_rate": 0.001, "lsr_learning_rate": True}, 4)
    assert (only_lr.global_batch_size, only_lr.per_replica_batch_size) == (256, 64)
    assert only_lr.learning_rate == pytest.approx(0.004)
    assert global_batch_size(100, 3, False) == 100 and per_replica_batch_size(100, 3, False) == 33
    assert scaled_learning_rate(0.01, 1, True) == 0.01


def test_warmup_is_linear_then_constant():
    assert warmup_learning_rate(0.0, 0.001, 0.004, 3) == pytest.approx(0.001)
    assert warmup_learning_rate(1.5, 0.001, 0.004, 3) == pytest.approx(0.0025)
    assert warmup_learning_rate(3.0, 0.001, 0.004, 3) == pytest.approx(0.004)
    assert warmup_learning_rate(7.2, 0.001, 0.004, 3) == pytest.approx(0.004)
    assert warmup_learning_rate(0.5, 0.001, 0.004, 0) == pytest.approx(0.004)


def test_plan_warmup_start_values():
    hps = {"batch_size": 32, "learning_rate": 0.001, "lsr_learning_rate": True, "warmup_lr": True, "warmup_epochs": 2}
    scaled = make_plan(hps, 4)
    assert (scaled.warmup_start_lr, scaled.learning_rate, scaled.warmup_epochs) == pytest.approx((0.001, 0.004, 2))
    single = make_plan(hps, 1)
    assert single.warmup_start_lr == pytest.approx(0.001 * WARMUP_START_FACTOR)
    off = make_plan(dict(hps, warmup_lr=False), 4)
    assert off.warmup_epochs == 0 and off.warmup_start_lr == off.learning_rate


def test_bad_values_are_user_errors():
    with pytest.raises(HpcnasError, match="replicas"):
        make_plan({"batch_size": 8, "learning_rate": 0.1}, 0)
    with pytest.raises(HpcnasError, match="learning_rate must be positive"):
        scaled_learning_rate(0.0, 2, True)
    with pytest.raises(HpcnasError, match="warmup_epochs"):
        make_plan({"batch_size": 8, "learning_rate": 0.1, "warmup_lr": True, "warmup_epochs": -1}, 1)
