"""Architecture space: choices, validation, description, and the Keras models it builds."""
from __future__ import annotations

import numpy as np
import pytest

from hpcnas.core.errors import HpcnasError
from hpcnas.nas.space import ArchSpace, ops


def mlp_space(num_layers: int = 3) -> ArchSpace:
    space = ArchSpace(input_shape=(6,), output_shape=(1,))
    trunk = [space.inputs[0]]
    for i in range(num_layers):
        layer = space.variable(ops.dense_choices([4, 8], ["relu", "tanh"]), trunk[-1], name=f"l{i}")
        prev = trunk[-3:-1][::-1]
        trunk.append(space.skip(layer, prev, merge="add", name=f"s{i}") if prev else layer)
    return space


def test_choice_sizes_follow_node_order():
    space = mlp_space(3)
    # l0 (5 ops), l1 (5) + s1 (1 candidate), l2 (5) + s2 (2 candidates)
    assert space.choice_sizes == [5, 5, 2, 5, 2, 2]
    assert space.size == 5 * 5 * 2 * 5 * 2 * 2


def test_validate_rejects_bad_sequences():
    space = mlp_space(2)
    assert space.validate([1, 2, 1]) == [1, 2, 1]
    with pytest.raises(HpcnasError, match="needs 3"):
        space.validate([1, 2])
    with pytest.raises(HpcnasError, match=r"arch_seq\[2\] = 2 is out of range"):
        space.validate([1, 2, 2])
    with pytest.raises(HpcnasError, match="whole numbers"):
        space.validate([1, 2.5, 0])


def test_sample_is_seeded_and_valid():
    space = mlp_space(3)
    a, b = space.sample(7), space.sample(7)
    assert a == b and space.validate(a) == a
    assert len({tuple(space.sample(s)) for s in range(20)}) > 10


def test_describe_names_operations_and_skips():
    space = mlp_space(2)
    lines = space.describe([0, 3, 1])
    # the skip candidates of l1 are the nodes before its input: here the model input
    assert lines == ["l0: Identity", "l1: Dense(8, relu)", "s1: l1 add input_0"]
    assert space.describe([0, 3, 0])[-1] == "s1: l1"


def test_bad_building_blocks_are_one_line_errors():
    space = ArchSpace((3,), (1,))
    with pytest.raises(HpcnasError, match="positive integer"):
        ops.Dense(0)
    with pytest.raises(HpcnasError, match="rate must be"):
        ops.Dropout(1.5)
    with pytest.raises(HpcnasError, match="merge must be"):
        space.variable([ops.Identity()], merge="mul")
    other = ArchSpace((3,), (1,))
    with pytest.raises(HpcnasError, match="not a node of this space"):
        space.variable([ops.Identity()], other.inputs[0])
    multi = ArchSpace([(3,), (4,)], (1,))
    with pytest.raises(HpcnasError, match="several inputs"):
        multi.variable([ops.Identity()])


@pytest.mark.tf
def test_build_models_differ_by_arch_seq_and_predict():
    from tests.support.components import require_module

    require_module("tensorflow", "tf")
    space = mlp_space(2)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    small = space.build([0, 0, 0])  # identity, identity, no skip -> output Dense(1) on the input
    assert small.count_params() == 6 + 1
    plain = space.build([4, 4, 0])  # Dense(8, tanh) twice, no skip
    assert plain.count_params() == (6 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    assert plain.predict(x, verbose=0).shape == (5, 1)
    skipped = space.build([4, 4, 1])  # + the 6-wide input added to l1's 8 outputs: a Dense(8) projection
    assert skipped.count_params() == plain.count_params() + (6 * 8 + 8)
    three = mlp_space(3).build([0, 0, 0, 4, 1, 0])  # s2 adds l0 output (6 wide, identity) to l2 (8 wide)
    assert three.count_params() == (6 * 8 + 8) + (6 * 8 + 8) + (8 + 1)


@pytest.mark.tf
def test_mirror_node_shares_weights_and_concat_merges():
    from tests.support.components import require_module

    require_module("tensorflow", "tf")
    space = ArchSpace([(4,), (5,), (5,)], (1,))
    cell, d1, d2 = space.inputs
    drug = space.variable([ops.Dense(3, "relu"), ops.Dense(7)], d1, name="drug")
    mirror = space.mirror(drug, d2, name="drug2")
    space.constant(ops.Identity(), cell, drug, mirror, name="merge")
    model = space.build([1])
    # one shared Dense(7) (5*7+7), then output on concat 4 + 7 + 7 = 18 features
    assert model.count_params() == (5 * 7 + 7) + (18 + 1)
    rng = np.random.default_rng(1)
    c, a, b = (rng.normal(size=(3, n)).astype("float32") for n in (4, 5, 5))
    swapped = model.predict([c, b, a], verbose=0)
    # the drug encoder is shared, so only the concat order differs: outputs differ unless weights are tied
    drug_layer = model.get_layer("drug_op")
    assert drug_layer.kernel.shape == (5, 7)
    assert swapped.shape == (3, 1)
