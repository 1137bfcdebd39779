"""Small whole models mixing ops (the plan of several ops, views, in-place and overlapping placements, several
inputs and outputs, int16x8), with the fast and the reference kernels; each also compiles for the Cortex-M4."""

from __future__ import annotations

import pytest

from conformance.harness import KERNELS, CaseDrawer, check_case, keras_input

draw = CaseDrawer("models")
draw.add("Classifier", ["CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"], shape=(16, 16, 3))
draw.add("Residual", ["CONV_2D", "ADD", "PAD", "CONCATENATION"], shape=(10, 10, 4))
draw.add("Gated", ["FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL"], shape=(12,))
draw.add("TwoByTwo", ["CONV_2D", "ADD", "MAX_POOL_2D"], shape=(8, 8, 3))  # two inputs, two outputs
draw.add("Audio16", ["CONV_2D", "LEAKY_RELU", "PAD", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D",
                     "FULLY_CONNECTED", "SOFTMAX"], int16=True, shape=(4, 24, 4))
CASES = draw.cases


def build(case):
    import tensorflow as tf

    layers = tf.keras.layers
    shape = case.options["shape"]
    inputs = keras_input(shape)
    if case.kind == "TwoByTwo":
        other = keras_input(shape)
        total = layers.Add()([layers.Conv2D(3, 3, padding="same")(inputs), other])
        return tf.keras.Model([inputs, other], [total, layers.MaxPooling2D(2)(other)]), [shape, shape]
    if case.kind == "Audio16":  # the seanet pattern: strided convolutions, leaky ReLUs, padding, residuals
        y = layers.Conv2D(8, (1, 3), padding="same")(inputs)
        y = layers.LeakyReLU(0.3)(y)
        z = layers.Lambda(lambda t: tf.pad(t, [[0, 0], [0, 0], [2, 0], [0, 0]]))(y)
        z = layers.DepthwiseConv2D((1, 3))(z)
        y = layers.Add()([y, layers.LeakyReLU(0.3)(z)])
        y = layers.AveragePooling2D((2, 4))(y)
        outputs = layers.Dense(4, activation="softmax")(layers.Flatten()(y))
        return tf.keras.Model(inputs, outputs), [shape]
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
    if case.int16 and fast_kernels:
        pytest.skip("int16x8 has one (reference) kernel")
    model, engine = check_case(case, build, tmp_path, fast_kernels)
    if case.kind == "TwoByTwo":  # every input and output its own memory while it lives
        assert len(model.inputs) == len(model.outputs) == 2
        regions = [(engine.plan.offsets[t], model.tensors[t].nbytes) for t in model.outputs]
        assert regions[0][0] + regions[0][1] <= regions[1][0] or regions[1][0] + regions[1][1] <= regions[0][0]
        assert engine.input_sizes == [model.tensors[t].nbytes for t in model.inputs]
