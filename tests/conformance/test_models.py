"""Small whole models mixing ops (the plan of several ops, views, in-place and overlapping placements), with the
fast and the reference kernels; each also compiles for the Cortex-M4."""

from __future__ import annotations

import pytest

from conformance.harness import KERNELS, CaseDrawer, check_case, keras_input

draw = CaseDrawer("models")
draw.add("Classifier", ["CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"], shape=(16, 16, 3))
draw.add("Residual", ["CONV_2D", "ADD", "PAD", "CONCATENATION"], shape=(10, 10, 4))
draw.add("Gated", ["FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL"], shape=(12,))
CASES = draw.cases


def build(case):
    import tensorflow as tf

    layers = tf.keras.layers
    inputs = keras_input(case.options["shape"])
    if case.kind == "Classifier":
        y = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
        y = layers.MaxPooling2D(2)(y)
        y = layers.GlobalAveragePooling2D()(y)
        outputs = layers.Dense(5, activation="softmax")(y)
    elif case.kind == "Residual":
        y = layers.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 2], [2, 1], [0, 0]]))(inputs)  # asymmetric: not folded
        y = layers.Conv2D(4, (4, 4), activation="relu")(y)
        y = layers.Add()([inputs, y])
        outputs = layers.Concatenate()([y, layers.Conv2D(2, 1)(inputs)])
    elif case.kind == "Gated":
        gate = layers.Dense(8, activation="sigmoid")(inputs)
        value = layers.Dense(8, activation="tanh")(inputs)
        outputs = layers.Multiply()([gate, value])
    else:
        raise ValueError(case.kind)
    return tf.keras.Model(inputs, outputs), [case.options["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("fast_kernels", KERNELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_model_matches_tflm(case, fast_kernels, tmp_path):
    check_case(case, build, tmp_path, fast_kernels)
