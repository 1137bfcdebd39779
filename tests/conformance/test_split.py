"""SPLIT (equal pieces) and SPLIT_V (given sizes) along each axis, every piece a model output; int8 and int16."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("split")
for axis, int16 in ((1, False), (3, False), (2, True)):
    shape = list(draw.image(channels=4))
    pieces = draw.integer(2, 3)
    shape[axis - 1] = pieces * draw.integer(1, 3)
    draw.add("Split", ["SPLIT"], int16=int16, shape=tuple(shape), axis=axis, sizes=pieces)
for axis, int16 in ((2, False), (3, False), (1, True)):
    shape = list(draw.image(channels=4))
    shape[axis - 1] = draw.integer(3, 7)
    first = draw.integer(1, shape[axis - 1] - 2)
    second = draw.integer(1, shape[axis - 1] - first - 1)
    sizes = (first, second, shape[axis - 1] - first - second)
    draw.add("Split", ["SPLIT_V"], int16=int16, shape=tuple(shape), axis=axis, sizes=sizes)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    sizes = list(spec["sizes"]) if isinstance(spec["sizes"], tuple) else spec["sizes"]
    outputs = tf.keras.layers.Lambda(lambda t: tf.split(t, sizes, axis=spec["axis"]))(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_split_matches_tflm(case, tmp_path):
    model, _ = check_case(case, build, tmp_path)
    assert len(model.outputs) == (case.options["sizes"] if isinstance(case.options["sizes"], int) else 3)
