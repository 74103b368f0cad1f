"""Neural architecture search: architecture spaces, shipped problems and Keras run functions.

* :mod:`hpcnas.nas.space` -- a small graph language whose models are chosen by ``arch_seq``.
* :mod:`hpcnas.nas.problems` -- ``combo`` (multi-input regression) and ``attn`` (binary
  classification) with synthetic data generators and loaders for the CANDLE files.
* :mod:`hpcnas.nas.run` -- run functions: ``alpha`` (one process), ``tf_distributed``
  (MirroredStrategy) and ``horovod`` (one rank per MPI process).
* :mod:`hpcnas.nas.schedules` -- linear scaling rule and learning-rate warm-up (pure).

TensorFlow is imported lazily: building a space or a problem needs no TensorFlow.
"""
from __future__ import annotations
