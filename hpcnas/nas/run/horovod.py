"""``hpcnas.nas.run.horovod.run``: data-parallel training with Horovod, one rank per MPI process.

Start it under MPI (``mpirun -np 2 python -m hpcnas.balsam.job_runner ...`` as the Balsam
evaluator does in ``mpi`` job mode, or ``mpirun -np 2 python script.py``). Every rank:

* initialises Horovod, pins one GPU by local rank when there are GPUs, bounds its threads
  (``num_threads`` or ``OMP_NUM_THREADS`` from threads-per-rank);
* builds the same model, wraps the optimizer in ``hvd.DistributedOptimizer`` (gradients are
  averaged over ranks), and broadcasts rank 0's initial weights;
* trains on its equal shard of the training data with the per-rank batch size; LSR and
  warm-up as in :mod:`hpcnas.nas.schedules` with ``hvd.size()`` replicas.

Rank 0 computes the validation metrics and the objective and broadcasts the objective, so
every rank returns the same result and exits 0 (the job runner reports rank 0's only).

Horovod wraps its gradient all-reduce and its variable broadcast in ``tf.function`` with
autograph on; every new process then converts those Python helpers (source to AST and back)
at the first training step, which cost 3-5 s per evaluation on a 2-core machine -- more than
the training of a small model. Their control flow is plain Python over lists plus an explicit
``tf.cond``, so :func:`trace_horovod_without_autograph` has them traced as they are written.
Needs the ``horovod`` extra (TensorFlow 2.13 / Keras 2 here; see ``tests/install_horovod_env.sh``).
:func:`resources` maps ``num_ranks`` of a configuration to the Balsam job's ranks.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from hpcnas.core.loading import optional_import
from hpcnas.nas.keras_compat import configure_threads, get_keras, get_tf, make_optimizer
from hpcnas.nas.schedules import make_plan
from hpcnas.nas.training import (
    make_recorder, make_warmup, model_inputs, num_samples, objective_from_history, prepare, take,
)


def shard_indices(n: int, rank: int, size: int, seed: int = 0) -> np.ndarray:
    """Rank ``rank``'s rows: equal-size shards of one seeded permutation (same on every rank)."""
    per = n // size
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[rank * per : (rank + 1) * per])


def trace_horovod_without_autograph(tf: Any) -> bool:
    """Make Horovod build its ``tf.function`` helpers with ``autograph=False``; False if it cannot.

    Replaces ``_make_subgraph`` (``tf.function(f)`` in Horovod 0.28) where Horovod's TensorFlow
    modules imported it; the graphs are the same, only the source conversion is skipped.
    """
    import importlib

    def make_subgraph(func: Any) -> Any:
        return tf.function(func, autograph=False)

    patched = False
    for name in ("horovod.tensorflow.util", "horovod.tensorflow", "horovod.tensorflow.functions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if callable(getattr(module, "_make_subgraph", None)):
            module._make_subgraph = make_subgraph
            patched = True
    return patched


def train(config: dict[str, Any]) -> dict[str, Any]:
    """Train on this rank; returns the result dict plus ``model`` and ``rank``."""
    start = time.time()
    tf = get_tf()  # first: sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads
    hvd = optional_import("horovod.tensorflow.keras", "horovod")
    hvd.init()
    trace_horovod_without_autograph(tf)
    problem, arch_seq, hps = prepare(config)
    configure_threads(hps.get("num_threads"))
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        gpu = gpus[hvd.local_rank() % len(gpus)]
        tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.set_visible_devices(gpu, "GPU")
    keras = get_keras()
    keras.backend.clear_session()
    rank, size = hvd.rank(), hvd.size()
    (x_tr, y_tr), (x_va, y_va) = problem.load()
    index = shard_indices(num_samples(x_tr), rank, size, seed=problem.seed or 0)
    x_tr, y_tr = take(x_tr, index), np.asarray(y_tr)[index]
    plan = make_plan(hps, size)
    batch = plan.per_replica_batch_size
    steps = -(-len(index) // batch)
    model = problem.arch_space.build(arch_seq, keras)
    optimizer = hvd.DistributedOptimizer(make_optimizer(keras, hps["optimizer"], plan.learning_rate))
    model.compile(optimizer=optimizer, loss=problem.loss_name)
    callbacks: list[Any] = [hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback()]
    if plan.warmup_epochs > 0:
        callbacks.append(make_warmup(keras, plan.warmup_start_lr, plan.learning_rate, plan.warmup_epochs, steps))
    recorder = make_recorder(keras, x_va, y_va, problem.metric_names if rank == 0 else [], batch)
    callbacks.append(recorder)
    model.fit(
        model_inputs(x_tr), y_tr, batch_size=batch, epochs=int(hps["num_epochs"]),
        validation_data=(model_inputs(x_va), y_va), shuffle=bool(hps.get("shuffle", True)),
        callbacks=callbacks, verbose=int(hps.get("verbose", 0)) if rank == 0 else 0,
    )
    objective = objective_from_history(recorder.history, problem.objective_spec) if rank == 0 else None
    objective = optional_import("horovod.tensorflow", "horovod").broadcast_object(objective, root_rank=0)
    return {
        "objective": objective,
        "history": recorder.history,
        "rank": rank,
        "num_replicas": size,
        "batch_size": plan.global_batch_size,
        "per_rank_batch_size": batch,
        "learning_rate": plan.learning_rate,
        "steps_per_epoch": recorder.steps_per_epoch,
        "num_parameters": int(model.count_params()),
        "seconds": time.time() - start,
        "model": model,
    }


def run(config: dict[str, Any]) -> dict[str, Any]:
    """Run function: Horovod training on this rank; every rank returns rank 0's objective."""
    result = train(config)
    result.pop("model")
    return result


def resources(config: dict[str, Any]) -> dict[str, int]:
    """Balsam resources of a configuration: ``num_ranks`` ranks on one node (default 1)."""
    return {"num_nodes": 1, "ranks_per_node": int(config.get("num_ranks", 1) or 1)}


run.resources = resources  # type: ignore[attr-defined]
#: the Balsam job runner may skip the interpreter's teardown (TensorFlow's takes 1-1.5 s) after the report
run.fast_exit = True  # type: ignore[attr-defined]
