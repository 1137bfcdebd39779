"""RESIZE_NEAREST_NEIGHBOR up and down to random sizes, with TF2's half-pixel centers and with TF1's align_corners;
int8 and int16."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("resize_nearest_neighbor")
for mode, int16 in (("half_pixel", False), ("half_pixel", False), ("align_corners", False), ("plain", False),
                    ("half_pixel", True)):
    draw.add("Resize", ["RESIZE_NEAREST_NEIGHBOR"], int16=int16, shape=draw.image(low=2, high=8),
             size=(draw.integer(1, 13), draw.integer(1, 13)), mode=mode)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    if spec["mode"] == "half_pixel":
        resize = lambda t: tf.image.resize(t, spec["size"], method="nearest")  # noqa: E731
    else:
        resize = lambda t: tf.compat.v1.image.resize_nearest_neighbor(  # noqa: E731
            t, spec["size"], align_corners=spec["mode"] == "align_corners", half_pixel_centers=False)
    outputs = tf.keras.layers.Lambda(resize)(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_resize_nearest_neighbor_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
