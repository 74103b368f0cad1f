"""The Combo search space: per-input sub-networks, a shared drug encoder, a trunk with skips.

Layout for ``num_layers=L``, ``sub_layers=S``:

* cell line: S variable nodes (Identity / Dense(units, activation) / Dropout);
* drug 1: S variable nodes; drug 2: S mirror nodes -- the *same layers* (shared weights);
* merge: concatenation of the three branches;
* trunk: L variable nodes, each followed by a skip node that may add (with projection) any
  of the previous ``num_skips`` trunk outputs.
"""
from __future__ import annotations

from typing import Any, Sequence

from hpcnas.core.errors import HpcnasError
from hpcnas.nas.space import ArchSpace, ops


def layer_choices(units: Sequence[int], activations: Sequence[str], dropouts: Sequence[float]) -> list[ops.Operation]:
    return ops.dense_choices(list(units), list(activations)) + [ops.Dropout(r) for r in dropouts]


def create_search_space(
    input_shape: Any,
    output_shape: Any,
    num_layers: int = 3,
    sub_layers: int = 1,
    num_skips: int = 2,
    units: Sequence[int] = (16, 32, 64),
    activations: Sequence[str] = ("relu", "tanh"),
    dropouts: Sequence[float] = (0.05,),
) -> ArchSpace:
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3 or not isinstance(input_shape[0], (list, tuple)):
        raise HpcnasError(f"the Combo space needs 3 inputs (cell, drug 1, drug 2), got input_shape={input_shape!r}")
    if num_layers < 1 or sub_layers < 0 or num_skips < 0:
        raise HpcnasError("Combo space: num_layers >= 1, sub_layers >= 0, num_skips >= 0")
    space = ArchSpace(input_shape, output_shape)
    choices = layer_choices(units, activations, dropouts)
    cell, drug1, drug2 = space.inputs
    for i in range(sub_layers):
        cell = space.variable(choices, cell, name=f"cell_{i}")
        origin = space.variable(choices, drug1, name=f"drug_{i}")
        drug2 = space.mirror(origin, drug2, name=f"drug2_{i}")
        drug1 = origin
    merged = space.constant(ops.Identity(), cell, drug1, drug2, name="merge")
    trunk = [merged]
    for i in range(num_layers):
        layer = space.variable(choices, trunk[-1], name=f"layer_{i}")
        previous = trunk[-1 - num_skips : -1][::-1] if num_skips else []
        trunk.append(space.skip(layer, previous, merge="add", name=f"skip_{i}") if previous else layer)
    return space
