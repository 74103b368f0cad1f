"""Architecture search spaces: a small graph language for Keras models (see :mod:`.space`)."""
from __future__ import annotations

from hpcnas.nas.space import ops
from hpcnas.nas.space.nodes import ConstantNode, InputNode, MirrorNode, Node, SkipNode, VariableNode
from hpcnas.nas.space.space import ArchSpace

__all__ = ["ArchSpace", "ConstantNode", "InputNode", "MirrorNode", "Node", "SkipNode", "VariableNode", "ops"]
