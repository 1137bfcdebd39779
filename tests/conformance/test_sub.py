"""SUB of two inputs (two-input models), of a computed branch, and of a broadcast constant; int8 and int16."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input
from conformance.test_add import constant_operand

draw = CaseDrawer("sub")
for int16 in (False, False, True):
    draw.add("SubInputs", ["SUB"], int16=int16, shape=draw.image(), activation=draw.choice([None, "relu"]))
for int16 in (False, True):
    draw.add("SubBranch", ["SUB"], int16=int16, shape=draw.image(), activation=None)
draw.add("SubConstant", ["SUB"], shape=draw.image(), broadcast=draw.choice(["channel", "row", "scalar"]))
CASES = draw.cases


def build(case):
    import tensorflow as tf

    layers = tf.keras.layers
    spec = case.options
    first = keras_input(spec["shape"])
    inputs = [first]
    if case.kind == "SubInputs":
        inputs.append(keras_input(spec["shape"]))
        outputs = layers.Subtract()(inputs)
    elif case.kind == "SubBranch":
        branch = layers.Conv2D(spec["shape"][2], 1, bias_initializer="random_normal")(first)
        outputs = layers.Subtract()([branch, first])
    else:
        constant = constant_operand(case)
        outputs = layers.Lambda(lambda t: tf.subtract(t, constant))(first)
    if spec.get("activation"):
        outputs = layers.ReLU()(outputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]] * len(inputs)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_sub_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
