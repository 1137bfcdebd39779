"""HARD_SWISH on int8 (TFLite has no int16 variant) over narrow to wide input ranges."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("hard_swish")
for spread in (0.5, 2.0, 6.0):
    draw.add("HardSwish", ["HARD_SWISH"], shape=draw.image(), spread=spread)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    scaled = tf.keras.layers.Lambda(lambda t: t * spec["spread"])(inputs)
    outputs = tf.keras.layers.Activation("hard_swish")(scaled)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_hard_swish_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
