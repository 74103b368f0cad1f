"""Linear scaling rule (LSR) and learning-rate warm-up for data-parallel training (pure).

With ``n`` replicas (GPUs of a MirroredStrategy, or Horovod ranks):

* the *global* batch is ``batch_size * n`` when ``lsr_batch_size`` is on (each replica keeps
  ``batch_size``), else ``batch_size`` (each replica gets ``batch_size / n``);
* the learning rate is ``learning_rate * n`` when ``lsr_learning_rate`` is on;
* warm-up (``warmup_lr`` on and ``warmup_epochs > 0``) raises the rate linearly, batch by
  batch, from a start value to the target over ``warmup_epochs`` epochs, then keeps the
  target. The start is the unscaled ``learning_rate`` when the LSR scaled it up, otherwise
  ``WARMUP_START_FACTOR * target``.

Example: 0.001 and 256 on 2 GPUs with both rules on -> 0.002 and 512.
"""
from __future__ import annotations

from dataclasses import dataclass

from hpcnas.core.errors import HpcnasError

WARMUP_START_FACTOR = 0.1


@dataclass(frozen=True)
class TrainingPlan:
    """What a data-parallel run actually uses."""

    num_replicas: int
    global_batch_size: int
    per_replica_batch_size: int
    learning_rate: float
    warmup_start_lr: float
    warmup_epochs: float


def global_batch_size(batch_size: int, num_replicas: int, lsr: bool) -> int:
    _check(batch_size, num_replicas)
    return int(batch_size) * num_replicas if lsr else int(batch_size)


def per_replica_batch_size(batch_size: int, num_replicas: int, lsr: bool) -> int:
    _check(batch_size, num_replicas)
    return int(batch_size) if lsr else max(1, int(batch_size) // num_replicas)


def scaled_learning_rate(learning_rate: float, num_replicas: int, lsr: bool) -> float:
    if not learning_rate > 0:
        raise HpcnasError(f"learning_rate must be positive, got {learning_rate}")
    _check(1, num_replicas)
    return float(learning_rate) * num_replicas if lsr else float(learning_rate)


def warmup_learning_rate(epoch_progress: float, start_lr: float, target_lr: float, warmup_epochs: float) -> float:
    """The rate after ``epoch_progress`` epochs (``epoch + batch / steps_per_epoch``)."""
    if warmup_epochs <= 0 or epoch_progress >= warmup_epochs:
        return float(target_lr)
    fraction = max(0.0, float(epoch_progress)) / float(warmup_epochs)
    return float(start_lr) + (float(target_lr) - float(start_lr)) * fraction


def make_plan(hyperparameters: dict, num_replicas: int) -> TrainingPlan:
    """Apply the LSR and warm-up options of ``hyperparameters`` for ``num_replicas``."""
    bs, lr = int(hyperparameters["batch_size"]), float(hyperparameters["learning_rate"])
    lsr_bs, lsr_lr = bool(hyperparameters.get("lsr_batch_size")), bool(hyperparameters.get("lsr_learning_rate"))
    target = scaled_learning_rate(lr, num_replicas, lsr_lr)
    warm = float(hyperparameters.get("warmup_epochs") or 0) if hyperparameters.get("warmup_lr") else 0.0
    if warm < 0:
        raise HpcnasError(f"warmup_epochs must be >= 0, got {warm}")
    start = lr if (lsr_lr and num_replicas > 1) else target * WARMUP_START_FACTOR
    return TrainingPlan(
        num_replicas=num_replicas,
        global_batch_size=global_batch_size(bs, num_replicas, lsr_bs),
        per_replica_batch_size=per_replica_batch_size(bs, num_replicas, lsr_bs),
        learning_rate=target,
        warmup_start_lr=start if warm > 0 else target,
        warmup_epochs=warm,
    )


def _check(batch_size: int, num_replicas: int) -> None:
    if int(num_replicas) < 1:
        raise HpcnasError(f"the number of replicas must be at least 1, got {num_replicas}")
    if int(batch_size) < 1:
        raise HpcnasError(f"batch_size must be at least 1, got {batch_size}")
