"""``hpcnas.nas.run.tf_distributed.run``: data-parallel training with ``tf.distribute.MirroredStrategy``.

One process drives every GPU visible to it (``CUDA_VISIBLE_DEVICES``, set per evaluation by
the evaluator); the number of replicas is the number of GPUs. Without GPUs it trains on the
CPU, or -- for tests -- on ``HPCNAS_TF_CPU_DEVICES=k`` logical CPU devices (``k`` replicas).
The batch size and learning rate follow the linear scaling rule when ``lsr_batch_size`` /
``lsr_learning_rate`` are on, and the learning rate warms up over ``warmup_epochs`` when
``warmup_lr`` is on (:mod:`hpcnas.nas.schedules`).
"""
from __future__ import annotations

import os
from typing import Any

from hpcnas.nas.keras_compat import configure_threads, get_tf
from hpcnas.nas.run.alpha import train
from hpcnas.nas.training import prepare

CPU_DEVICES_ENV = "HPCNAS_TF_CPU_DEVICES"


def make_strategy(tf: Any) -> Any:
    """A MirroredStrategy over the visible GPUs, else over ``HPCNAS_TF_CPU_DEVICES`` CPU devices."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    if gpus:
        return tf.distribute.MirroredStrategy()
    k = int(os.environ.get(CPU_DEVICES_ENV, "1") or 1)
    cpus = tf.config.list_physical_devices("CPU")
    if k > 1:
        try:
            tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * k)
        except RuntimeError:  # runtime already initialised: keep the devices it has
            pass
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][: max(1, k)]
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=tf.distribute.ReductionToOneDevice())


def run(config: dict[str, Any]) -> dict[str, Any]:
    """Run function: train with MirroredStrategy; returns ``objective``, ``num_replicas``, ``batch_size``, ..."""
    _, _, hps = prepare(config)
    configure_threads(hps.get("num_threads"))
    tf = get_tf()
    strategy = make_strategy(tf)
    result = train(config, num_replicas=int(strategy.num_replicas_in_sync), scope=strategy.scope())
    result.pop("model")
    result["devices"] = [str(d) for d in strategy.extended.worker_devices]
    return result
