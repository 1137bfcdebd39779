"""TRANSPOSE by random permutations of 3-5 dimensional tensors; int8 and int16."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("transpose")
for rank, int16 in ((3, False), (4, False), (5, False), (4, True)):
    shape = tuple(draw.integer(2, 6) for _ in range(rank - 1))  # no 1-wide axis: the converter makes RESHAPEs
    permutation = (0, *(int(p) + 1 for p in draw.rng.permutation(rank - 1)))
    draw.add("Transpose", ["TRANSPOSE"], int16=int16, shape=shape, permutation=permutation)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    outputs = tf.keras.layers.Lambda(lambda t: tf.transpose(t, spec["permutation"]))(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_transpose_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
