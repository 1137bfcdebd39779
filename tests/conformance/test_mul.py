"""MUL of two computed tensors and of a tensor and a broadcast constant."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input
from conformance.test_add import constant_operand

draw = CaseDrawer("mul")
for _ in range(4):
    draw.add("MulBranch", ["MUL"], shape=draw.image())
for _ in range(5):
    draw.add("MulConstant", ["MUL"], shape=draw.image(), broadcast=draw.choice(["channel", "row", "scalar"]))
draw.add("MulBranch", ["MUL"], int16=True, shape=draw.image())  # int16
draw.add("MulConstant", ["MUL"], int16=True, shape=draw.image(), broadcast="channel")
CASES = draw.cases


def build(case):
    import tensorflow as tf

    layers = tf.keras.layers
    spec = case.options
    inputs = keras_input(spec["shape"])
    if case.kind == "MulBranch":
        branch = layers.Conv2D(spec["shape"][2], 1, bias_initializer="random_normal")(inputs)
        outputs = layers.Multiply()([inputs, branch])
    else:
        constant = constant_operand(case)
        outputs = layers.Lambda(lambda t: tf.multiply(t, constant))(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_mul_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
