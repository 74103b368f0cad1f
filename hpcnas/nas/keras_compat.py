"""The few places where Keras 3 (TensorFlow 2.16+) and ``tf.keras`` 2 (TensorFlow 2.13) differ.

Everything in :mod:`hpcnas.nas` reaches TensorFlow through these helpers, imported lazily,
so that problems and spaces load without TensorFlow and the same code runs in the main
environment (Keras 3) and in the Horovod environment (TensorFlow 2.13, Keras 2).
"""
from __future__ import annotations

import os
from typing import Any

from hpcnas.core.loading import optional_import

#: defaults for Intel OpenMP when a run is given a thread count (users' own values win)
_NOT_OPTIMIZERS = {"optimizer", "lossscaleoptimizer", "schedule", "learningrateschedule"}
KMP_DEFAULTS = {"KMP_BLOCKTIME": "0", "KMP_AFFINITY": "granularity=fine,compact,1,0"}


def configure_threads(num_threads: int | None = None) -> int | None:
    """Pin TensorFlow to ``num_threads`` (default: ``OMP_NUM_THREADS`` from the launcher).

    Sets ``OMP_NUM_THREADS`` and the ``KMP_*`` defaults for the process, then TensorFlow's
    intra-op threads to ``num_threads`` and inter-op threads to ``min(2, num_threads)``.
    Call before TensorFlow runs its first op; later calls only update the environment.
    Returns the thread count applied, or ``None`` when none was asked for.
    """
    if num_threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        num_threads = int(env) if env.isdigit() and int(env) > 0 else None
    if num_threads is None:
        return None
    os.environ["OMP_NUM_THREADS"] = str(num_threads)
    for key, value in KMP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    tf = get_tf()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, num_threads))
    except RuntimeError:  # the runtime is already initialised in this process
        pass
    return num_threads


def get_tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return optional_import("tensorflow", "tf")


def get_keras() -> Any:
    """``tf.keras``: Keras 3 on TensorFlow 2.16+, Keras 2 on TensorFlow 2.13."""
    return get_tf().keras


def keras_major(keras: Any) -> int:
    """Major version of a Keras module (``tf.keras`` of TensorFlow <= 2.15 has no ``__version__``:
    its package's version is used, e.g. ``keras`` 2.13 for ``keras.api._v2.keras``)."""
    version = getattr(keras, "__version__", None)
    if version is None:
        import importlib

        try:
            version = getattr(importlib.import_module(keras.__name__.split(".")[0]), "__version__", None)
        except (ImportError, AttributeError):
            version = None
    return int(str(version or "3").split(".")[0])


def make_optimizer(keras: Any, name: str, learning_rate: float) -> Any:
    """A Keras optimizer by name (``adam``, ``sgd``, ``rmsprop``, ...).

    On Keras 2 the ``legacy`` optimizers are used: Horovod 0.28 wraps those reliably.
    """
    from hpcnas.core.errors import HpcnasError

    module = keras.optimizers
    if keras_major(keras) < 3 and hasattr(keras.optimizers, "legacy"):
        module = keras.optimizers.legacy
    classes = {
        n.lower(): getattr(module, n) for n in dir(module)
        if isinstance(getattr(module, n), type) and n.lower() not in _NOT_OPTIMIZERS
    }
    cls = classes.get(str(name).lower())
    if cls is None:
        raise HpcnasError(f"unknown optimizer '{name}': use one of {', '.join(sorted(classes))}")
    return cls(learning_rate=float(learning_rate))


def set_learning_rate(optimizer: Any, value: float) -> None:
    """Set an optimizer's learning rate on Keras 2 and 3 (and on Horovod's wrapper)."""
    lr = optimizer.learning_rate if hasattr(optimizer, "learning_rate") else optimizer.lr
    if hasattr(lr, "assign"):
        lr.assign(float(value))
    else:
        optimizer.learning_rate = float(value)


def get_learning_rate(optimizer: Any) -> float:
    lr = optimizer.learning_rate if hasattr(optimizer, "learning_rate") else optimizer.lr
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)
