"""MEAN over constant axes, with and without keep_dims."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("mean")
for axes, keep in (((1, 2), True), ((1, 2), False), ((3,), True), ((1,), False), ((2, 3), False)):
    height, width, channels = draw.image(channels=8)
    draw.add("Mean", ["MEAN"], shape=(height, width, max(channels, 2)), axes=axes, keep=keep)  # no 1-wide reduction
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
