"""PAD with random paddings before and after each dimension."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("pad")
for _ in range(6):
    pads = tuple((draw.integer(0, 2), draw.integer(0, 2)) for _ in range(3))
    draw.add("Pad", ["PAD"], shape=draw.image(), pads=pads)
for _ in range(2):  # int16
    pads = tuple((draw.integer(0, 2), draw.integer(0, 2)) for _ in range(3))
    draw.add("Pad", ["PAD"], int16=True, shape=draw.image(), pads=pads)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    pads = [[0, 0]] + [list(p) for p in spec["pads"]]
    outputs = tf.keras.layers.Lambda(lambda t: tf.pad(t, pads))(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_pad_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
