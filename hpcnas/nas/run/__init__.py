"""Run functions of NAS configurations: ``alpha`` (one process), ``tf_distributed``
(MirroredStrategy over the visible GPUs) and ``horovod`` (one rank per MPI process).

Each is ``run(config) -> dict`` with an ``"objective"`` key (maximised) plus training
facts (replicas, batch size, learning rate, parameters, seconds), as
:mod:`hpcnas.evaluator.runner` accepts.
"""
from __future__ import annotations
