"""RELU and RELU6 as standalone ops (on a model's input nothing can fuse them); int8 and int16."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, layer_model

draw = CaseDrawer("relu")
for int16 in (False, True):
    draw.add("ReLU", ["RELU"], int16=int16, shape=draw.image(), ceiling=None)
    draw.add("ReLU", ["RELU6"], int16=int16, shape=draw.image(), ceiling=6.0)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    # on the model's input, where no op can absorb it (the calibration's normal samples rarely reach 6)
    return layer_model(case, tf.keras.layers.ReLU(case.options["ceiling"]))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_relu_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
