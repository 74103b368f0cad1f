"""Operations a node of an architecture space can apply (Keras layers, built lazily).

An :class:`Operation` is a small, JSON-describable recipe: ``layer(keras, name)`` returns a
callable applied to one tensor (a Keras layer), or ``None`` for the identity. Nothing here
imports TensorFlow; the ``keras`` module is passed in by the builder, so the same space
builds with Keras 3 (TensorFlow 2.16+) and with ``tf.keras`` 2 (TensorFlow 2.13 / Horovod).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from hpcnas.core.errors import HpcnasError

_ACTIVATIONS = {None, "linear", "relu", "tanh", "sigmoid", "elu", "selu", "swish", "gelu", "softmax"}


class Operation(ABC):
    """One choice of a node: how to turn the node's (merged) input into its output."""

    @abstractmethod
    def layer(self, keras: Any, name: str) -> Any | None:
        """Return a Keras layer applied to the node input, or ``None`` (identity)."""

    @abstractmethod
    def describe(self) -> str:
        """A short readable name, e.g. ``Dense(64, relu)``."""

    def __repr__(self) -> str:
        return self.describe()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.describe() == other.describe()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash(self.describe())


class Identity(Operation):
    """Pass the input through unchanged."""

    def layer(self, keras: Any, name: str) -> None:
        return None

    def describe(self) -> str:
        return "Identity"


class Dense(Operation):
    """A fully connected layer with ``units`` outputs and an optional activation."""

    def __init__(self, units: int, activation: str | None = None) -> None:
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise HpcnasError(f"Dense(units={units!r}): units must be a positive integer")
        if activation not in _ACTIVATIONS:
            raise HpcnasError(
                f"Dense activation {activation!r} is unknown: use one of {sorted(a for a in _ACTIVATIONS if a)}"
            )
        self.units = units
        self.activation = activation

    def layer(self, keras: Any, name: str) -> Any:
        return keras.layers.Dense(self.units, activation=self.activation, name=name)

    def describe(self) -> str:
        return f"Dense({self.units}{', ' + self.activation if self.activation else ''})"


class Dropout(Operation):
    """Dropout with drop probability ``rate`` (active only in training)."""

    def __init__(self, rate: float) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise HpcnasError(f"Dropout(rate={rate!r}): rate must be a number in [0, 1)")
        self.rate = float(rate)

    def layer(self, keras: Any, name: str) -> Any:
        return keras.layers.Dropout(self.rate, name=name)

    def describe(self) -> str:
        return f"Dropout({self.rate:g})"


class Activation(Operation):
    """An element-wise activation (``relu``, ``tanh``, ...)."""

    def __init__(self, activation: str) -> None:
        if activation not in _ACTIVATIONS or activation is None:
            raise HpcnasError(f"Activation({activation!r}) is unknown: use one of {sorted(a for a in _ACTIVATIONS if a)}")
        self.activation = activation

    def layer(self, keras: Any, name: str) -> Any:
        return keras.layers.Activation(self.activation, name=name)

    def describe(self) -> str:
        return f"Activation({self.activation})"


class BatchNormalization(Operation):
    """Batch normalisation over the feature axis."""

    def layer(self, keras: Any, name: str) -> Any:
        return keras.layers.BatchNormalization(name=name)

    def describe(self) -> str:
        return "BatchNormalization"


def dense_choices(units: list[int], activations: list[str | None], identity: bool = True) -> list[Operation]:
    """The usual tabular choice list: optional identity, then every ``Dense(units, activation)``."""
    ops: list[Operation] = [Identity()] if identity else []
    ops += [Dense(u, a) for u in units for a in activations]
    return ops
