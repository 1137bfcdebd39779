"""LEAKY_RELU with small and large slopes (Keras refuses negative ones); int8 and int16."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, layer_model

draw = CaseDrawer("leaky_relu")
for alpha, int16 in ((0.2, False), (0.01, False), (1.5, False), (0.3, True), (0.05, True)):
    draw.add("LeakyReLU", ["LEAKY_RELU"], int16=int16, shape=draw.image(), alpha=alpha)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    return layer_model(case, tf.keras.layers.LeakyReLU(case.options["alpha"]))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_leaky_relu_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
