"""``ArchSpace``: a graph of nodes whose free choices form ``arch_seq``.

Example (a 3-layer MLP with skip connections to any of the 2 previous layers)::

    from hpcnas.nas.space import ArchSpace, ops

    space = ArchSpace(input_shape=(10,), output_shape=(1,))
    prev = [space.inputs[0]]
    for i in range(3):
        layer = space.variable(ops.dense_choices([16, 64], ["relu", "tanh"]), prev[-1])
        prev.append(space.skip(layer, prev[-3:-1][::-1], merge="add"))
    model = space.build([3, 1, 0, 2, 0, 1, 4, 0, 0])      # a keras.Model

Nodes are added in topological order (a node's inputs must already be in the space); a
node given no inputs takes the previously added node. ``arch_seq`` lists each node's
choices in the order the nodes were added. The output node (default: the last node added)
feeds a final ``Dense(output units, output_activation)``.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from hpcnas.core.errors import HpcnasError
from hpcnas.nas.space.nodes import ConstantNode, InputNode, MirrorNode, Node, SkipNode, VariableNode
from hpcnas.nas.space.ops import Operation


class ArchSpace:
    """An architecture search space; :meth:`build` turns an ``arch_seq`` into a Keras model."""

    def __init__(
        self,
        input_shape: Sequence[int] | Sequence[Sequence[int]],
        output_shape: Sequence[int] | int,
        output_activation: str | None = None,
    ) -> None:
        shapes = _as_shape_list(input_shape)
        self.output_units = _output_units(output_shape)
        self.output_activation = output_activation
        self.nodes: list[Node] = []
        self.inputs: list[InputNode] = []
        for i, shape in enumerate(shapes):
            node = InputNode(f"input_{i}", i, shape)
            self.inputs.append(node)
            self.nodes.append(node)
        self._output: Node | None = None

    # ------------------------------------------------------------------ building
    def constant(self, op: Operation, *inputs: Node, merge: str = "concat", name: str | None = None) -> ConstantNode:
        return self._add(ConstantNode(self._name(name, "const"), op, self._inputs(inputs), merge))

    def variable(self, ops: Sequence[Operation], *inputs: Node, merge: str = "concat", name: str | None = None) -> VariableNode:
        return self._add(VariableNode(self._name(name, "var"), ops, self._inputs(inputs), merge))

    def mirror(self, origin: Node, *inputs: Node, merge: str = "concat", name: str | None = None) -> MirrorNode:
        self._check_member(origin)
        return self._add(MirrorNode(self._name(name, "mirror"), origin, self._inputs(inputs), merge))

    def skip(self, main: Node, candidates: Sequence[Node], merge: str = "add", name: str | None = None) -> SkipNode:
        for node in [main, *candidates]:
            self._check_member(node)
        return self._add(SkipNode(self._name(name, "skip"), main, candidates, merge))

    def set_output(self, node: Node) -> None:
        self._check_member(node)
        self._output = node

    @property
    def output(self) -> Node:
        return self._output or self.nodes[-1]

    # ------------------------------------------------------------------ choices
    @property
    def choice_sizes(self) -> list[int]:
        """Number of options of each ``arch_seq`` position."""
        return [size for node in self.nodes for size in node.choice_sizes]

    @property
    def num_choices(self) -> int:
        return len(self.choice_sizes)

    @property
    def size(self) -> int:
        """Number of distinct ``arch_seq`` (an upper bound on distinct models)."""
        return math.prod(self.choice_sizes) if self.choice_sizes else 1

    def validate(self, arch_seq: Sequence[Any]) -> list[int]:
        """Return ``arch_seq`` as a list of ints, or raise naming the bad position."""
        sizes = self.choice_sizes
        try:
            seq = [int(v) for v in arch_seq]
        except (TypeError, ValueError):
            raise HpcnasError(f"arch_seq {arch_seq!r} must be a list of integers") from None
        if any(float(a) != s for a, s in zip(arch_seq, seq)):
            raise HpcnasError(f"arch_seq {list(arch_seq)!r} must hold whole numbers")
        if len(seq) != len(sizes):
            raise HpcnasError(f"arch_seq has {len(seq)} choices but the space needs {len(sizes)}")
        for i, (v, n) in enumerate(zip(seq, sizes)):
            if not 0 <= v < n:
                raise HpcnasError(f"arch_seq[{i}] = {v} is out of range: that choice takes 0..{n - 1}")
        return seq

    def sample(self, rng: np.random.Generator | int | None = None) -> list[int]:
        """A uniformly random ``arch_seq``."""
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        return [int(rng.integers(n)) for n in self.choice_sizes]

    def _slices(self, seq: Sequence[int]) -> dict[int, list[int]]:
        out, pos = {}, 0
        for node in self.nodes:
            k = len(node.choice_sizes)
            out[id(node)] = list(seq[pos : pos + k])
            pos += k
        return out

    def describe(self, arch_seq: Sequence[Any]) -> list[str]:
        """One readable line per non-input node for ``arch_seq``."""
        slices = self._slices(self.validate(arch_seq))
        return [n.describe(slices[id(n)]) for n in self.nodes if not isinstance(n, InputNode)]

    # ------------------------------------------------------------------ Keras
    def build(self, arch_seq: Sequence[Any], keras: Any = None) -> Any:
        """Build the Keras model of ``arch_seq`` (``keras`` defaults to ``tf.keras``)."""
        if keras is None:
            from hpcnas.nas.keras_compat import get_keras

            keras = get_keras()
        slices = self._slices(self.validate(arch_seq))
        tensors: dict[int, Any] = {}
        layers: dict[int, Any] = {}
        for node in self.nodes:
            if isinstance(node, InputNode):
                tensors[id(node)] = keras.Input(shape=node.shape, name=node.name)
                continue
            choices = slices[id(node)]
            sources = node.chosen(choices) if isinstance(node, SkipNode) else node.inputs
            x = _merge(keras, [tensors[id(s)] for s in sources], node.merge, node.name)
            if isinstance(node, MirrorNode):
                layer = layers[id(node.origin)]
            else:
                layer = node.operation(choices).layer(keras, f"{node.name}_op")
                layers[id(node)] = layer
            tensors[id(node)] = layer(x) if layer is not None else x
        out = keras.layers.Dense(self.output_units, activation=self.output_activation, name="output")(
            tensors[id(self.output)]
        )
        return keras.Model(inputs=[tensors[id(n)] for n in self.inputs], outputs=out)

    # ------------------------------------------------------------------ helpers
    def _add(self, node: Any) -> Any:
        self.nodes.append(node)
        return node

    def _name(self, name: str | None, kind: str) -> str:
        name = name or f"{kind}_{len(self.nodes)}"
        if any(n.name == name for n in self.nodes):
            raise HpcnasError(f"node name '{name}' is used twice in the space: give unique names")
        return name

    def _check_member(self, node: Node) -> None:
        if not any(n is node for n in self.nodes):
            raise HpcnasError(f"{node!r} is not a node of this space: add nodes in order with space.variable/constant/...")

    def _inputs(self, inputs: Sequence[Node]) -> list[Node]:
        if not inputs:
            if len(self.nodes) == len(self.inputs) and len(self.inputs) > 1:
                raise HpcnasError("the space has several inputs: say which one(s) the first node reads")
            return [self.nodes[-1]]
        for node in inputs:
            self._check_member(node)
        return list(inputs)

    def __repr__(self) -> str:
        return f"ArchSpace({len(self.nodes)} nodes, {self.num_choices} choices, {self.size:.3g} architectures)"


def _merge(keras: Any, tensors: list[Any], mode: str, name: str) -> Any:
    if len(tensors) == 1:
        return tensors[0]
    if mode == "concat":
        return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")(tensors)
    width = int(tensors[0].shape[-1])
    same = [tensors[0]]
    for i, t in enumerate(tensors[1:], start=1):
        if int(t.shape[-1]) != width:
            t = keras.layers.Dense(width, name=f"{name}_proj{i}")(t)
        same.append(t)
    return keras.layers.Add(name=f"{name}_add")(same)


def _as_shape_list(input_shape: Any) -> list[tuple[int, ...]]:
    if isinstance(input_shape, int):
        return [(input_shape,)]
    items = list(input_shape)
    if items and all(isinstance(v, (int, np.integer)) for v in items):
        return [tuple(int(v) for v in items)]
    if items and all(isinstance(v, (tuple, list)) for v in items):
        return [tuple(int(v) for v in s) for s in items]
    raise HpcnasError(f"input_shape {input_shape!r} must be a shape like (10,) or a list of shapes")


def _output_units(output_shape: Any) -> int:
    if isinstance(output_shape, (int, np.integer)):
        return int(output_shape)
    shape = tuple(output_shape)
    if len(shape) != 1 or int(shape[0]) < 1:
        raise HpcnasError(f"output_shape {output_shape!r} must be (n,) with n >= 1")
    return int(shape[0])
