"""The Attn search space: a stack of variable layers with optional skip connections.

Each of ``num_layers`` layers chooses Identity / Dense(units, activation) / Dropout; a skip
node after it may add (``merge="add"``, with projection) or concatenate the outputs of any of
the previous ``num_skips`` layers. The output is one sigmoid unit (binary classification).
"""
from __future__ import annotations

from typing import Any, Sequence

from hpcnas.core.errors import HpcnasError
from hpcnas.nas.problems.combo.space import layer_choices
from hpcnas.nas.space import ArchSpace


def create_search_space(
    input_shape: Any,
    output_shape: Any,
    num_layers: int = 4,
    num_skips: int = 2,
    units: Sequence[int] = (32, 64, 128),
    activations: Sequence[str] = ("relu", "tanh"),
    dropouts: Sequence[float] = (0.1, 0.3),
    merge: str = "add",
) -> ArchSpace:
    if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
        raise HpcnasError(f"the Attn space takes one input, got input_shape={input_shape!r}")
    if num_layers < 1 or num_skips < 0:
        raise HpcnasError("Attn space: num_layers >= 1 and num_skips >= 0")
    space = ArchSpace(input_shape, output_shape, output_activation="sigmoid")
    choices = layer_choices(units, activations, dropouts)
    trunk = [space.inputs[0]]
    for i in range(num_layers):
        layer = space.variable(choices, trunk[-1], name=f"layer_{i}")
        previous = trunk[-1 - num_skips : -1][::-1] if num_skips else []
        trunk.append(space.skip(layer, previous, merge=merge, name=f"skip_{i}") if previous else layer)
    return space
