"""FULLY_CONNECTED: random widths and activations, per-channel and per-tensor scales, several rows per input
(keep_num_dims), depth tails of the fast kernel, and float edges (QUANTIZE/DEQUANTIZE)."""

from __future__ import annotations

import pytest

from conformance.harness import KERNELS, CaseDrawer, check_kernels_case, keras_activation, keras_input

draw = CaseDrawer("fully_connected")
for _ in range(8):
    draw.add("Dense", ["FULLY_CONNECTED"], per_channel=bool(draw.integer(0, 1)), rows=0, inputs=draw.integer(1, 47),
             units=draw.integer(1, 23), activation=draw.activation())
draw.add("Dense", ["QUANTIZE", "FULLY_CONNECTED", "DEQUANTIZE"], float_io=True, rows=0, inputs=17, units=5,
         activation="relu")
for rows, inputs, units, per_channel in ((3, 20, 9, True), (2, 13, 6, False), (4, 64, 33, True), (1, 7, 4, True),
                                         (1, 130, 5, False)):
    draw.add("Dense", ["FULLY_CONNECTED"], per_channel=per_channel, rows=rows, inputs=inputs, units=units,
             activation=draw.activation())
for rows, per_channel in ((0, True), (0, False), (3, True)):  # int16x8
    draw.add("Dense", ["FULLY_CONNECTED"], per_channel=per_channel, int16=True, rows=rows,
             inputs=draw.integer(1, 40), units=draw.integer(1, 20), activation=draw.activation())
draw.add("Dense", ["FULLY_CONNECTED"], int16=True, int32_bias=True, rows=0, inputs=33, units=9, activation=None)
draw.add("Dense", ["QUANTIZE", "FULLY_CONNECTED", "DEQUANTIZE"], float_io=True, int16=True, rows=0, inputs=17,
         units=5, activation="relu")
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    shape = (spec["rows"], spec["inputs"]) if spec["rows"] else (spec["inputs"],)
    inputs = keras_input(shape)
    outputs = tf.keras.layers.Dense(spec["units"], activation=keras_activation(spec["activation"]),
                                    bias_initializer="random_normal")(inputs)
    return tf.keras.Model(inputs, outputs), [shape]


@pytest.mark.slow
@pytest.mark.parametrize("fast_kernels", KERNELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_fully_connected_matches_tflm(case, fast_kernels, tmp_path):
    check_kernels_case(case, build, tmp_path, fast_kernels)
