"""CONCATENATION of a tensor and a computed branch along the channel, row and column axes."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("concatenation")
for axis in (-1, 1, 2):
    draw.add("Concatenate", ["CONCATENATION"], shape=draw.image(), axis=axis)
draw.add("Concatenate", ["CONCATENATION"], int16=True, shape=draw.image(), axis=-1)  # int16
CASES = draw.cases


def build(case):
    import tensorflow as tf

    layers = tf.keras.layers
    spec = case.options
    inputs = keras_input(spec["shape"])
    channels = 3 if spec["axis"] == -1 else spec["shape"][2]
    branch = layers.Conv2D(channels, 1, bias_initializer="random_normal")(inputs)
    outputs = layers.Concatenate(axis=spec["axis"])([inputs, branch])
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_concatenation_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
