"""PRELU with per-channel and shared slopes: int8 from the converter, int16 by retyping a converted model's input
and output (the converter has no int16 PRELU; TFLM has, with an int8 alpha)."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, converted, edited, layer_model

draw = CaseDrawer("prelu")
for shared in (False, True):
    draw.add("PReLU", ["PRELU"], shape=draw.image(), shared=shared)
INT16_CASE = draw.add("PReLU", ["PRELU"], shape=draw.image(), shared=False)
CASES = draw.cases[:-1]


def build(case):
    import tensorflow as tf

    return layer_model(case, tf.keras.layers.PReLU(alpha_initializer=tf.keras.initializers.RandomUniform(-0.6, 0.6),
                                                   shared_axes=[1, 2] if case.options["shared"] else None))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_prelu_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)


@pytest.mark.slow
def test_int16_prelu_matches_tflm(tmp_path):
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def to_int16(model):
        graph = model.subgraphs[0]
        for index in (*graph.inputs, *graph.outputs):
            tensor = graph.tensors[index]
            tensor.type = schema.TensorType.INT16
            tensor.quantization.zeroPoint = [0]

    model, _ = check_case(INT16_CASE, build, tmp_path, model_bytes=edited(converted(INT16_CASE, build), to_int16))
    assert model.tensors[model.inputs[0]].dtype == "int16" and model.op_names == ["PRELU"]
