"""The PPO policy-value network of ``hpcnas nas ppo`` (TensorFlow / Keras, CPU, imported only by PPO).

An LSTM reads the architecture sequence autoregressively: at step ``t`` its input is the one-hot of
the value chosen at step ``t-1`` (a start token at ``t = 0``) and of the position ``t``; a softmax
head over the values of decision ``t`` (the other logits masked out) gives the policy and a linear
head the value baseline. ``ppo_lnlstm_*`` adds a layer normalisation of the LSTM output
(Keras has no layer-normalised LSTM cell; baselines' ``lnlstm`` normalises the gates inside it).

The loss is OpenAI baselines' ppo2 loss without value clipping: ``-min(r A, clip(r, 1 -/+ eps) A)``
``- ent_coef * entropy + 0.5 * (V - R)^2``, gradients clipped to a global norm of 0.5.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from typing import Any, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.getLogger("tensorflow").setLevel(logging.WARNING)  # no DEBUG lines under a DEBUG root logger

import tensorflow as tf  # noqa: E402

try:
    tf.config.set_visible_devices([], "GPU")  # CPU only: the policy is tiny
except RuntimeError:  # devices already in use by the run function in this process
    pass

import keras  # noqa: E402

NETWORK = re.compile(r"^ppo_(ln)?lstm_([1-9][0-9]*)$")
VF_COEF = 0.5
MAX_GRAD_NORM = 0.5


class Policy:
    """LSTM policy and value over an architecture of ``len(choice_sizes)`` decisions."""

    def __init__(self, choice_sizes: Sequence[int], network: str = "ppo_lstm_128", lr: float = 1e-3,
                 seed: int = 0) -> None:
        match = NETWORK.match(network)
        if match is None:
            raise ValueError(f"unknown network {network!r}")
        self.layer_norm, self.units = bool(match.group(1)), int(match.group(2))
        self.sizes = [int(s) for s in choice_sizes]
        self.steps, self.width = len(self.sizes), max(self.sizes)
        self.mask = tf.constant(
            [[0.0 if c < s else -1e9 for c in range(self.width)] for s in self.sizes], dtype=tf.float32
        )
        init = keras.initializers
        self.cell = keras.layers.LSTMCell(
            self.units, kernel_initializer=init.GlorotUniform(seed=seed),
            recurrent_initializer=init.Orthogonal(seed=seed + 1),
        )
        self.norm = keras.layers.LayerNormalization() if self.layer_norm else None
        self.pi = keras.layers.Dense(self.width, kernel_initializer=init.Orthogonal(gain=0.01, seed=seed + 2))
        self.vf = keras.layers.Dense(1, kernel_initializer=init.Orthogonal(gain=1.0, seed=seed + 3))
        self.optimizer = keras.optimizers.Adam(learning_rate=lr, epsilon=1e-5)
        self._forward(np.zeros((1, self.steps), dtype=np.int64))  # build the weights
        self.variables = [*self.cell.trainable_variables, *(self.norm.trainable_variables if self.norm else []),
                          *self.pi.trainable_variables, *self.vf.trainable_variables]
        self.optimizer.build(self.variables)

    # ----------------------------------------------------------------- network
    def _inputs(self, previous: Any, t: int) -> Any:
        batch = tf.shape(previous)[0]
        position = tf.one_hot(tf.fill([batch], t), self.steps)
        return tf.concat([tf.one_hot(previous, self.width + 1), position], axis=1)

    def _step(self, x: Any, state: Any, t: int) -> tuple[Any, Any, Any]:
        out, state = self.cell(x, state)
        if self.norm is not None:
            out = self.norm(out)
        logits = self.pi(out) + self.mask[t]
        return logits, tf.squeeze(self.vf(out), axis=1), state

    def _zero_state(self, batch: int) -> list[Any]:
        return [tf.zeros((batch, self.units)), tf.zeros((batch, self.units))]

    def _forward(self, actions: np.ndarray) -> tuple[Any, Any]:
        """Logits ``[batch, steps, width]`` and values ``[batch, steps]`` of known actions (teacher forcing)."""
        actions = tf.convert_to_tensor(actions, dtype=tf.int64)
        batch = tf.shape(actions)[0]
        state = self._zero_state(batch)
        previous = tf.fill([batch], tf.constant(self.width, tf.int64))  # the start token
        logits, values = [], []
        for t in range(self.steps):
            lg, v, state = self._step(self._inputs(previous, t), state, t)
            logits.append(lg)
            values.append(v)
            previous = actions[:, t]
        return tf.stack(logits, axis=1), tf.stack(values, axis=1)

    # ----------------------------------------------------------------- acting
    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` architectures: actions ``[n, steps]``, their log-probabilities and the values."""
        state = self._zero_state(n)
        previous = tf.fill([n], tf.constant(self.width, tf.int64))
        actions = np.zeros((n, self.steps), dtype=np.int64)
        logps = np.zeros((n, self.steps))
        values = np.zeros((n, self.steps))
        for t in range(self.steps):
            lg, v, state = self._sample_step(previous, state, tf.constant(t))
            logp = lg.numpy().astype(np.float64)[:, : self.sizes[t]]
            probs = np.exp(logp)
            probs /= probs.sum(axis=1, keepdims=True)
            chosen = np.array([rng.choice(self.sizes[t], p=p) for p in probs], dtype=np.int64)
            actions[:, t], logps[:, t], values[:, t] = chosen, logp[np.arange(n), chosen], v.numpy()
            previous = tf.constant(chosen)
        return actions, logps, values

    @tf.function(reduce_retracing=True)
    def _sample_step(self, previous: Any, state: Any, t: Any) -> Any:
        batch = tf.shape(previous)[0]
        x = tf.concat([tf.one_hot(previous, self.width + 1), tf.one_hot(tf.fill([batch], t), self.steps)], axis=1)
        out, state = self.cell(x, state)
        if self.norm is not None:
            out = self.norm(out)
        logits = self.pi(out) + tf.gather(self.mask, t)
        return tf.nn.log_softmax(logits), tf.squeeze(self.vf(out), axis=1), state

    # ----------------------------------------------------------------- learning
    def gradients(self, actions: np.ndarray, old_logp: np.ndarray, advantages: np.ndarray, returns: np.ndarray,
                  cliprange: float, ent_coef: float) -> tuple[np.ndarray, dict[str, float]]:
        """The flat gradient of the PPO loss on these episodes (clipped to :data:`MAX_GRAD_NORM`)."""
        grads, stats = self._gradients(
            tf.constant(actions, tf.int64), tf.constant(old_logp, tf.float32), tf.constant(advantages, tf.float32),
            tf.constant(returns, tf.float32), tf.constant(cliprange, tf.float32), tf.constant(ent_coef, tf.float32),
        )
        return self.flatten(grads), {k: float(v) for k, v in stats.items()}

    @tf.function(reduce_retracing=True)
    def _gradients(self, actions: Any, old: Any, adv: Any, ret: Any, cliprange: Any, ent_coef: Any) -> Any:
        with tf.GradientTape() as tape:
            logits, values = self._forward(actions)
            logp_all = tf.nn.log_softmax(logits)
            logp = tf.reduce_sum(tf.one_hot(actions, self.width) * logp_all, axis=2)
            ratio = tf.exp(logp - old)
            surrogate = tf.minimum(ratio * adv, tf.clip_by_value(ratio, 1.0 - cliprange, 1.0 + cliprange) * adv)
            pg_loss = -tf.reduce_mean(surrogate)
            valid = tf.cast(self.mask > -1.0, tf.float32)
            entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(logp_all) * logp_all * valid, axis=2))
            vf_loss = 0.5 * tf.reduce_mean(tf.square(values - ret))
            loss = pg_loss - ent_coef * entropy + VF_COEF * vf_loss
        grads = tape.gradient(loss, self.variables)
        grads, _ = tf.clip_by_global_norm(grads, MAX_GRAD_NORM)
        clipfrac = tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > cliprange, tf.float32))
        return grads, {"loss": loss, "pg_loss": pg_loss, "vf_loss": vf_loss, "entropy": entropy, "clipfrac": clipfrac}

    def zero_gradient(self) -> np.ndarray:
        return np.zeros(sum(int(np.prod(v.shape)) for v in self.variables))

    def flatten(self, tensors: Sequence[Any]) -> np.ndarray:
        return np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in tensors])

    def apply(self, flat: np.ndarray) -> None:
        grads, offset = [], 0
        for v in self.variables:
            size = int(np.prod(v.shape))
            grads.append(tf.constant(flat[offset: offset + size].reshape(v.shape), dtype=v.dtype))
            offset += size
        self.optimizer.apply_gradients(zip(grads, self.variables))

    def weights(self) -> np.ndarray:
        return self.flatten([v.numpy() for v in self.variables])

    def checksum(self) -> str:
        """SHA-256 (first 16 hex digits) of the weights: equal on every agent while they stay synchronised."""
        data = b"".join(np.ascontiguousarray(v.numpy()).tobytes() for v in self.variables)
        return hashlib.sha256(data).hexdigest()[:16]

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        logits, _ = self._forward(actions)
        logp_all = tf.nn.log_softmax(logits)
        return tf.reduce_sum(tf.one_hot(actions, self.width) * logp_all, axis=2).numpy()
