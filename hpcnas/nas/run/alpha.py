"""``hpcnas.nas.run.alpha.run``: build, train and score one architecture in this process.

Threads: ``num_threads`` (a hyper-parameter) or ``OMP_NUM_THREADS`` (set by the launcher
from threads-per-rank) bounds TensorFlow's thread pools; ``KMP_BLOCKTIME`` /
``KMP_AFFINITY`` defaults are set for Intel OpenMP builds (see
:func:`hpcnas.nas.keras_compat.configure_threads`).
"""
from __future__ import annotations

import time
from typing import Any

from hpcnas.nas.keras_compat import configure_threads, get_keras, make_optimizer
from hpcnas.nas.schedules import make_plan
from hpcnas.nas.training import make_recorder, make_warmup, model_inputs, num_samples, objective_from_history, prepare


def train(config: dict[str, Any], num_replicas: int = 1, scope: Any = None) -> dict[str, Any]:
    """Train ``config``'s model; ``scope`` (a distribution strategy) places the variables.

    Returns the run's result dict: ``objective``, ``history``, ``num_replicas``,
    ``batch_size`` (global), ``learning_rate``, ``steps_per_epoch``, ``num_parameters``, ``seconds``.
    """
    start = time.time()
    problem, arch_seq, hps = prepare(config)
    configure_threads(hps.get("num_threads"))
    keras = get_keras()
    keras.backend.clear_session()  # long-lived workers train many models
    (x_tr, y_tr), (x_va, y_va) = problem.load()
    plan = make_plan(hps, num_replicas)
    steps = -(-num_samples(x_tr) // plan.global_batch_size)
    if scope is not None:
        with scope:
            model = _compiled(problem, arch_seq, hps, plan, keras)
    else:
        model = _compiled(problem, arch_seq, hps, plan, keras)
    recorder = make_recorder(keras, x_va, y_va, problem.metric_names, plan.global_batch_size)
    callbacks = [recorder]
    if plan.warmup_epochs > 0:
        callbacks.insert(0, make_warmup(keras, plan.warmup_start_lr, plan.learning_rate, plan.warmup_epochs, steps))
    model.fit(
        model_inputs(x_tr), y_tr, batch_size=plan.global_batch_size, epochs=int(hps["num_epochs"]),
        validation_data=(model_inputs(x_va), y_va), shuffle=bool(hps.get("shuffle", True)),
        callbacks=callbacks, verbose=int(hps.get("verbose", 0)),
    )
    return {
        "objective": objective_from_history(recorder.history, problem.objective_spec),
        "history": recorder.history,
        "num_replicas": plan.num_replicas,
        "batch_size": plan.global_batch_size,
        "learning_rate": plan.learning_rate,
        "steps_per_epoch": recorder.steps_per_epoch,
        "num_parameters": int(model.count_params()),
        "seconds": time.time() - start,
        "model": model,
    }


def _compiled(problem: Any, arch_seq: list[int], hps: dict[str, Any], plan: Any, keras: Any) -> Any:
    model = problem.arch_space.build(arch_seq, keras)
    model.compile(optimizer=make_optimizer(keras, hps["optimizer"], plan.learning_rate), loss=problem.loss_name)
    return model


def run(config: dict[str, Any]) -> dict[str, Any]:
    """Run function: train in this process and return ``{"objective": ..., ...}``."""
    result = train(config)
    result.pop("model")
    return result
