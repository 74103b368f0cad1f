"""Nodes of an architecture space.

Every node has ``inputs`` (earlier nodes) and contributes ``choice_sizes`` -- the sizes of
the integer choices it adds to ``arch_seq`` (zero or more). ``operation(choices)`` returns
the :class:`~hpcnas.nas.space.ops.Operation` the node applies for its slice of ``arch_seq``.
When a node has several inputs they are merged first (``"concat"`` or ``"add"``; ``add``
projects inputs of another width with a linear Dense layer).
"""
from __future__ import annotations

from typing import Sequence

from hpcnas.core.errors import HpcnasError
from hpcnas.nas.space.ops import Identity, Operation

MERGES = ("concat", "add")


class Node:
    """Base class: a named vertex of the graph with its predecessors."""

    def __init__(self, name: str, inputs: Sequence["Node"] = (), merge: str = "concat") -> None:
        if merge not in MERGES:
            raise HpcnasError(f"node '{name}': merge must be one of {MERGES}, got {merge!r}")
        self.name = name
        self.inputs = list(inputs)
        self.merge = merge

    @property
    def choice_sizes(self) -> list[int]:
        return []

    def operation(self, choices: Sequence[int]) -> Operation:
        return Identity()

    def describe(self, choices: Sequence[int]) -> str:
        return f"{self.name}: {self.operation(choices).describe()}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class InputNode(Node):
    """The ``index``-th input of the model, of the given ``shape`` (without batch axis)."""

    def __init__(self, name: str, index: int, shape: tuple[int, ...]) -> None:
        super().__init__(name)
        self.index = index
        self.shape = tuple(int(s) for s in shape)


class ConstantNode(Node):
    """Always applies the same operation (no choice)."""

    def __init__(self, name: str, op: Operation, inputs: Sequence[Node] = (), merge: str = "concat") -> None:
        super().__init__(name, inputs, merge)
        if not isinstance(op, Operation):
            raise HpcnasError(f"node '{name}': {op!r} is not an Operation (use ops.Dense(...), ops.Dropout(...), ...)")
        self.op = op

    def operation(self, choices: Sequence[int]) -> Operation:
        return self.op


class VariableNode(Node):
    """Applies one operation out of ``ops``; contributes one choice of size ``len(ops)``."""

    def __init__(self, name: str, ops: Sequence[Operation], inputs: Sequence[Node] = (), merge: str = "concat") -> None:
        super().__init__(name, inputs, merge)
        ops = list(ops)
        if not ops:
            raise HpcnasError(f"variable node '{name}' has no operations: give at least one choice")
        for op in ops:
            if not isinstance(op, Operation):
                raise HpcnasError(f"variable node '{name}': {op!r} is not an Operation")
        self.ops = ops

    @property
    def choice_sizes(self) -> list[int]:
        return [len(self.ops)]

    def operation(self, choices: Sequence[int]) -> Operation:
        return self.ops[choices[0]]


class MirrorNode(Node):
    """Applies the *same layer* (shared weights) as ``origin`` to other inputs; no choice.

    Used for shared sub-networks, e.g. one drug encoder applied to both drugs of a pair.
    """

    def __init__(self, name: str, origin: Node, inputs: Sequence[Node] = (), merge: str = "concat") -> None:
        super().__init__(name, inputs, merge)
        if not isinstance(origin, (VariableNode, ConstantNode)):
            raise HpcnasError(f"mirror node '{name}' must mirror a variable or constant node, got {origin!r}")
        self.origin = origin

    def describe(self, choices: Sequence[int]) -> str:
        return f"{self.name}: same layer as {self.origin.name}"


class SkipNode(Node):
    """Skip connections: ``main`` plus any subset of ``candidates``, merged by ``merge``.

    Contributes one binary choice per candidate (0: not connected, 1: connected), so a
    search can connect a node to any of the previous N nodes.
    """

    def __init__(self, name: str, main: Node, candidates: Sequence[Node], merge: str = "add") -> None:
        super().__init__(name, [main], merge)
        self.main = main
        self.candidates = list(candidates)

    @property
    def choice_sizes(self) -> list[int]:
        return [2] * len(self.candidates)

    def chosen(self, choices: Sequence[int]) -> list[Node]:
        return [self.main] + [c for c, bit in zip(self.candidates, choices) if bit]

    def describe(self, choices: Sequence[int]) -> str:
        extra = [c.name for c, bit in zip(self.candidates, choices) if bit]
        return f"{self.name}: {self.main.name}" + (f" {self.merge} {', '.join(extra)}" if extra else "")
