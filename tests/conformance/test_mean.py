"""MEAN over constant axes, with and without keep_dims; int8 and int16 (Keras global average pooling and
ops.mean in int16x8 models)."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("mean")
for axes, keep in (((1, 2), True), ((1, 2), False), ((3,), True), ((1,), False), ((2, 3), False)):
    height, width, channels = draw.image(channels=8)
    draw.add("Mean", ["MEAN"], shape=(height, width, max(channels, 2)), axes=axes, keep=keep)  # no 1-wide reduction
for axes, keep in (((1, 2), True), ((1, 2), False), ((3,), False), ((2,), True), ((1, 2, 3), False)):
    height, width, channels = draw.image(channels=8)
    draw.add("Mean", ["MEAN"], int16=True, shape=(height, width, max(channels, 2)), axes=axes, keep=keep)
for int16 in (False, True):  # GlobalAveragePooling1D: a sequence averaged over time
    draw.add("Mean", ["MEAN"], int16=int16, shape=(draw.integer(3, 40), draw.integer(1, 12)), axes=(1,), keep=False)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    outputs = tf.keras.layers.Lambda(
        lambda t: tf.reduce_mean(t, axis=list(spec["axes"]), keepdims=spec["keep"]))(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_mean_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
