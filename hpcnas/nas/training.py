"""Training pieces shared by the run functions (alpha, tf_distributed, horovod).

* :func:`prepare` turns a configuration into ``(problem, arch_seq, hyper-parameters)``.
* Validation metrics are computed here from the model's predictions on the whole
  validation set, the same way on Keras 2 and 3: ``r2``, ``mse``, ``mae`` (regression),
  ``acc``, ``auc`` (binary or one-hot classification). They are logged as ``val_<name>``
  next to Keras' own ``loss`` / ``val_loss``; the objective reads these per-epoch logs.
* :func:`objective_from_history` applies ``[-]metric[__last|__max]``.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from hpcnas.core.errors import HpcnasError
from hpcnas.problem.na_problem import NaProblem, parse_objective, resolve_problem


def prepare(config: dict[str, Any]) -> tuple[NaProblem, list[int], dict[str, Any]]:
    problem = resolve_problem(config.get("problem"))
    arch_seq = problem.arch_space.validate(config.get("arch_seq", []))
    return problem, arch_seq, problem.hyperparameters_of(config)


def as_list(x: Any) -> list[np.ndarray]:
    return [np.asarray(a) for a in x] if isinstance(x, (list, tuple)) else [np.asarray(x)]


def num_samples(x: Any) -> int:
    return int(as_list(x)[0].shape[0])


def take(x: Any, index: Any) -> Any:
    """Rows ``index`` of an array or of each array of a list."""
    if isinstance(x, (list, tuple)):
        return [np.asarray(a)[index] for a in x]
    return np.asarray(x)[index]


def model_inputs(x: Any) -> Any:
    arrays = as_list(x)
    return arrays if len(arrays) > 1 else arrays[0]


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    y, p = y.reshape(len(y), -1), p.reshape(len(p), -1)
    ss_res = ((y - p) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)))


def _acc(y: np.ndarray, p: np.ndarray) -> float:
    y, p = y.reshape(len(y), -1), p.reshape(len(p), -1)
    if p.shape[1] == 1:
        return float(np.mean((p[:, 0] > 0.5) == (y[:, 0] > 0.5)))
    return float(np.mean(p.argmax(axis=1) == y.argmax(axis=1)))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y, p = y.reshape(len(y), -1), p.reshape(len(p), -1)
    if p.shape[1] > 1:
        y, p = y[:, -1], p[:, -1]
    try:
        return float(roc_auc_score(y.ravel() > 0.5, p.ravel()))
    except ValueError:  # one class only in the validation set
        return float("nan")


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "r2": _r2,
    "mse": lambda y, p: float(np.mean((y.reshape(p.shape) - p) ** 2)),
    "mae": lambda y, p: float(np.mean(np.abs(y.reshape(p.shape) - p))),
    "acc": _acc,
    "auc": _auc,
}
METRICS["accuracy"] = _acc


def check_metrics(names: list[str]) -> None:
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise HpcnasError(f"unknown metric(s) {unknown}: use some of {sorted(METRICS)}")


def validation_metrics(names: list[str], y_true: Any, y_pred: Any) -> dict[str, float]:
    y, p = np.asarray(y_true, dtype="float64"), np.asarray(y_pred, dtype="float64")
    return {f"val_{m}": METRICS[m](y, p) for m in names}


def make_recorder(keras: Any, x_val: Any, y_val: Any, metrics: list[str], batch_size: int) -> Any:
    """A Keras callback recording per-epoch logs, ``val_<metric>``, ``lr``, ``train_seconds`` (the
    epoch's training batches, without validation) and the steps of each epoch."""
    from hpcnas.nas.keras_compat import get_learning_rate

    check_metrics(metrics)

    class Recorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.history: dict[str, list[float]] = {}
            self.steps_per_epoch: list[int] = []
            self._steps = 0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._steps = 0
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self._steps += 1
            self._train_end = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            values = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
            values["train_seconds"] = self._train_end - self._start if self._steps else 0.0
            values["lr"] = get_learning_rate(self.model.optimizer)
            if metrics:
                pred = self.model.predict(model_inputs(x_val), batch_size=max(256, batch_size), verbose=0)
                values.update(validation_metrics(metrics, y_val, pred))
            for key, value in values.items():
                self.history.setdefault(key, []).append(value)
            self.steps_per_epoch.append(self._steps)

    return Recorder()


def make_warmup(keras: Any, start_lr: float, target_lr: float, warmup_epochs: float, steps_per_epoch: int) -> Any:
    """A Keras callback applying :func:`hpcnas.nas.schedules.warmup_learning_rate` per batch."""
    from hpcnas.nas.keras_compat import set_learning_rate
    from hpcnas.nas.schedules import warmup_learning_rate

    class Warmup(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.rates: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if self.epoch > warmup_epochs + 1:
                return
            rate = warmup_learning_rate(self.epoch + batch / max(1, steps_per_epoch), start_lr, target_lr, warmup_epochs)
            set_learning_rate(self.model.optimizer, rate)
            self.rates.append(rate)

    return Warmup()


def objective_from_history(history: dict[str, list[float]], spec: str) -> float:
    """Apply the objective ``spec`` to per-epoch logs; NaN when the metric is missing or diverged."""
    sign, metric, how = parse_objective(spec)
    series = history.get(metric)
    if not series:
        raise HpcnasError(f"objective '{spec}' needs '{metric}', which training did not log (logged: {sorted(history)}): add it to Problem.metrics")
    values = [sign * v for v in series if v is not None and math.isfinite(v)]
    if not values:
        return float("nan")
    return float(values[-1] if how == "last" else max(values))
