"""LOGISTIC and TANH over inputs scaled from narrow to saturating ranges."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, layer_model, scaled_by

draw = CaseDrawer("activations")
for activation, op in (("sigmoid", "LOGISTIC"), ("tanh", "TANH")):
    for spread in (0.25, 0.5, 2.0, 8.0, 30.0):
        draw.add("Activation", [op], shape=draw.image(), activation=activation, spread=spread)
for activation, op in (("sigmoid", "LOGISTIC"), ("tanh", "TANH")):  # int16: the interpolated sigmoid table
    for spread in (0.5, 4.0):
        draw.add("Activation", [op], int16=True, shape=draw.image(), activation=activation, spread=spread)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    return layer_model(case, scaled_by(spec["spread"]), tf.keras.layers.Activation(spec["activation"]))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_activation_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
