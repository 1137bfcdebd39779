"""CONV_2D: random shapes, strides, dilations, paddings, fused activations, per-channel and per-tensor scales, and
every specialisation of the fast kernel (rows straight from the input, im2col patches, channel blocks and tails)."""

from __future__ import annotations

import pytest

from conformance.harness import KERNELS, CaseDrawer, check_kernels_case, keras_activation, layer_model

draw = CaseDrawer("conv_2d")
for _ in range(16):
    shape = draw.image()
    kernel = (draw.integer(1, min(shape[0], 4)), draw.integer(1, min(shape[1], 4)))
    dilated = draw.integer(0, 3) == 0
    stride = 1 if dilated else draw.integer(1, 3)
    dilation = 2 if dilated and min(shape[:2]) > 2 * max(kernel) else 1
    draw.add("Conv2D", ["CONV_2D"], per_channel=bool(draw.integer(0, 1)), shape=shape, filters=draw.integer(1, 8),
             kernel=kernel, stride=stride, dilation=dilation, padding=draw.padding(), activation=draw.activation(),
             bias=draw.integer(0, 3) > 0)
draw.add("Conv2D", ["QUANTIZE", "CONV_2D", "DEQUANTIZE"], float_io=True, shape=(6, 5, 2), filters=3, kernel=(3, 3),
         stride=1, dilation=1, padding="same", activation=None, bias=True)
# Every specialisation of the fast kernel: rows read straight from the input (depth % 4 == 0: 1x1, SAME borders,
# strides, row dilation), im2col patches (depth 1 or 3, column dilation), channel blocks of 4 with 1-3 left over,
# per-tensor scales, large depths.
for shape, filters, kernel, stride, dilation, padding, per_channel in (
        ((7, 6, 8), 6, (1, 1), 1, 1, "same", True), ((9, 8, 12), 5, (1, 1), 2, 1, "valid", False),
        ((8, 9, 16), 7, (3, 3), 1, 1, "same", True), ((9, 7, 8), 8, (3, 3), 2, 1, "same", False),
        ((6, 5, 4), 3, (4, 2), 1, 1, "same", True), ((9, 9, 8), 4, (3, 2), 1, 2, "same", True),
        ((4, 4, 64), 18, (3, 3), 1, 1, "same", True), ((3, 3, 128), 9, (1, 1), 1, 1, "valid", True),
        ((11, 8, 1), 9, (5, 4), 2, 1, "same", True), ((8, 8, 3), 6, (3, 3), 2, 1, "same", False),
        ((9, 9, 3), 5, (2, 3), 1, 2, "valid", True), ((6, 6, 5), 4, (2, 2), 1, 1, "same", True)):
    draw.add("Conv2D", ["CONV_2D"], per_channel=per_channel, shape=shape, filters=filters, kernel=kernel,
             stride=stride, dilation=dilation, padding=padding, activation=draw.activation(),
             bias=draw.integer(0, 3) > 0)
# int16x8: 16-bit activations, 64-bit accumulators with int64 biases (or 32-bit with int32 biases)
for _ in range(6):
    shape = draw.image()
    kernel = (draw.integer(1, min(shape[0], 3)), draw.integer(1, min(shape[1], 3)))
    draw.add("Conv2D", ["CONV_2D"], per_channel=bool(draw.integer(0, 1)), int16=True, shape=shape,
             filters=draw.integer(1, 8), kernel=kernel, stride=draw.integer(1, 2), dilation=1, padding=draw.padding(),
             activation=draw.activation(), bias=draw.integer(0, 3) > 0)
draw.add("Conv2D", ["CONV_2D"], int16=True, int32_bias=True, shape=(7, 6, 5), filters=6, kernel=(3, 3), stride=1,
         dilation=1, padding="same", activation="relu", bias=True)
draw.add("Conv2D", ["QUANTIZE", "CONV_2D", "DEQUANTIZE"], float_io=True, int16=True, shape=(6, 5, 2), filters=3,
         kernel=(3, 3), stride=1, dilation=1, padding="same", activation=None, bias=True)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    return layer_model(case, tf.keras.layers.Conv2D(spec["filters"], spec["kernel"], strides=spec["stride"],
                                                    padding=spec["padding"], dilation_rate=spec["dilation"],
                                                    activation=keras_activation(spec["activation"]),
                                                    use_bias=spec["bias"], bias_initializer="random_normal"))


@pytest.mark.slow
@pytest.mark.parametrize("fast_kernels", KERNELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_conv_2d_matches_tflm(case, fast_kernels, tmp_path):
    check_kernels_case(case, build, tmp_path, fast_kernels)
