"""DEPTHWISE_CONV_2D: random shapes, strides, depth multipliers, paddings, activations, weight scale granularity."""

from __future__ import annotations

import pytest

from conformance.harness import KERNELS, CaseDrawer, check_kernels_case, keras_activation, layer_model

draw = CaseDrawer("depthwise_conv_2d")
for _ in range(12):
    shape = draw.image()
    kernel = (draw.integer(1, min(shape[0], 4)), draw.integer(1, min(shape[1], 4)))
    draw.add("DepthwiseConv2D", ["DEPTHWISE_CONV_2D"], per_channel=bool(draw.integer(0, 1)), shape=shape,
             kernel=kernel, stride=draw.integer(1, 2), multiplier=draw.integer(1, 2), padding=draw.padding(),
             activation=draw.activation())
for _ in range(4):  # int16x8 (per channel: the converter fails per-tensor int16x8 depthwise layers)
    shape = draw.image()
    kernel = (draw.integer(1, min(shape[0], 3)), draw.integer(1, min(shape[1], 3)))
    draw.add("DepthwiseConv2D", ["DEPTHWISE_CONV_2D"], int16=True, shape=shape,
             kernel=kernel, stride=draw.integer(1, 2), multiplier=draw.integer(1, 2), padding=draw.padding(),
             activation=draw.activation())
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    return layer_model(case, tf.keras.layers.DepthwiseConv2D(spec["kernel"], strides=spec["stride"],
                                                             padding=spec["padding"],
                                                             depth_multiplier=spec["multiplier"],
                                                             activation=keras_activation(spec["activation"]),
                                                             bias_initializer="random_normal"))


@pytest.mark.slow
@pytest.mark.parametrize("fast_kernels", KERNELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_depthwise_conv_2d_matches_tflm(case, fast_kernels, tmp_path):
    check_kernels_case(case, build, tmp_path, fast_kernels)
