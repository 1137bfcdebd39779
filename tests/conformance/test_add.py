"""ADD of two computed tensors (a residual branch, optionally followed by a fused RELU) and of a tensor and a
constant broadcast along channels, rows or as a scalar."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("add")
for _ in range(6):
    draw.add("AddBranch", ["ADD"], shape=draw.image(), activation=draw.choice([None, "relu"]))
for _ in range(5):
    draw.add("AddConstant", ["ADD"], shape=draw.image(), broadcast=draw.choice(["channel", "row", "scalar"]))
for _ in range(2):  # int16
    draw.add("AddBranch", ["ADD"], int16=True, shape=draw.image(), activation=draw.choice([None, "relu"]))
draw.add("AddConstant", ["ADD"], int16=True, shape=draw.image(), broadcast=draw.choice(["channel", "row"]))
CASES = draw.cases


def constant_operand(case):
    """A seeded constant shaped for the case's broadcast."""
    import tensorflow as tf

    spec = case.options
    h, w, c = spec["shape"]
    shape = {"channel": (c,), "row": (w, 1), "scalar": ()}[spec["broadcast"]]
    return tf.constant(np.random.default_rng(case.seed).normal(0.5, 1.0, size=shape).astype(np.float32))


def build(case):
    import tensorflow as tf

    layers = tf.keras.layers
    spec = case.options
    inputs = keras_input(spec["shape"])
    if case.kind == "AddBranch":
        branch = layers.Conv2D(spec["shape"][2], 1, bias_initializer="random_normal")(inputs)
        outputs = layers.Add()([inputs, branch])
        if spec["activation"]:
            outputs = layers.ReLU()(outputs)
    else:
        constant = constant_operand(case)
        outputs = layers.Lambda(lambda t: tf.add(t, constant))(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_add_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
