"""MAX_POOL_2D and AVERAGE_POOL_2D: random windows, strides and paddings (windows clipped at the borders)."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("pooling")
for kind, op in (("MaxPooling2D", "MAX_POOL_2D"), ("AveragePooling2D", "AVERAGE_POOL_2D")):
    for _ in range(8):
        shape = draw.image()
        size = (draw.integer(1, min(shape[0], 4)), draw.integer(1, min(shape[1], 4)))
        draw.add(kind, [op], shape=shape, size=size, stride=draw.integer(1, 3), padding=draw.padding())
    for _ in range(2):  # int16
        shape = draw.image()
        size = (draw.integer(1, min(shape[0], 4)), draw.integer(1, min(shape[1], 4)))
        draw.add(kind, [op], int16=True, shape=shape, size=size, stride=draw.integer(1, 3), padding=draw.padding())
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    outputs = getattr(tf.keras.layers, case.kind)(spec["size"], strides=spec["stride"],
                                                  padding=spec["padding"])(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_pooling_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
