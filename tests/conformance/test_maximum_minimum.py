"""MAXIMUM and MINIMUM of two inputs and of a tensor and a broadcast constant; int8 and int16 (the int16 converter
requantizes both inputs to the output's scale first: QUANTIZE int16 -> int16)."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("maximum_minimum")
for op in ("MAXIMUM", "MINIMUM"):
    draw.add("Inputs", [op], shape=draw.image(), op=op)
    draw.add("Constant", [op], shape=draw.image(), op=op)
    draw.add("Inputs", [op], int16=True, shape=draw.image(), op=op)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    function = tf.maximum if spec["op"] == "MAXIMUM" else tf.minimum
    first = keras_input(spec["shape"])
    if case.kind == "Inputs":
        second = keras_input(spec["shape"])
        return tf.keras.Model([first, second], tf.keras.layers.Lambda(lambda ab: function(*ab))([first, second])), \
            [spec["shape"]] * 2
    values = np.random.default_rng(case.seed).normal(0.0, 1.0, size=spec["shape"][-1:]).astype(np.float32)
    outputs = tf.keras.layers.Lambda(lambda t: function(t, tf.constant(values)))(first)
    return tf.keras.Model(first, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_maximum_minimum_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
