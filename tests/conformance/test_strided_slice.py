"""STRIDED_SLICE with random begins, ends and strides per axis (negative indices and strides, masks, shrink-axis);
int8 and int16."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("strided_slice")


def draw_slice(shape):
    """Per axis (begin, end, stride) with None for an omitted bound (a mask), or an int index (shrink)."""
    axes = []
    for size in shape:
        form = draw.integer(0, 5)
        if form == 0:
            axes.append(draw.integer(-size, size - 1))  # shrink to one index
        elif form == 1:
            axes.append((None, None, -1))
        else:
            begin = draw.choice([None, draw.integer(-size, size - 1)])
            end = draw.choice([None, draw.integer(-size, size)])
            axes.append((begin, end, draw.choice([1, 1, 2, 3, -1, -2])))
    return tuple(axes)


def sliced_shape(shape, axes):
    index = tuple(a if isinstance(a, int) else slice(*a) for a in axes)
    return np.zeros(shape)[index].shape


for int16 in (False, False, False, False, True, True):
    shape = draw.image(low=2, high=9)
    axes = draw_slice(shape)
    while 0 in sliced_shape(shape, axes) or all(isinstance(a, int) for a in axes):  # the converter folds those
        axes = draw_slice(shape)
    draw.add("StridedSlice", ["STRIDED_SLICE"], int16=int16, shape=shape, axes=axes)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    index = tuple([slice(None)] + [a if isinstance(a, int) else slice(*a) for a in spec["axes"]])
    outputs = tf.keras.layers.Lambda(lambda t: t[index])(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_strided_slice_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
