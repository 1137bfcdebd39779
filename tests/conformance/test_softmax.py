"""SOFTMAX over the last dimension of 1-3 dimensional inputs with narrow and wide input spreads."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, layer_model, scaled_by

draw = CaseDrawer("softmax")
for _ in range(8):
    rank = draw.integer(1, 3)
    draw.add("Softmax", ["SOFTMAX"], shape=tuple(draw.integer(2, 11) for _ in range(rank)),
             spread=draw.choice([0.3, 1.0, 4.0]))
for spread in (0.3, 2.0, 8.0):  # int16: TFLite's lookup tables
    draw.add("Softmax", ["SOFTMAX"], int16=True, shape=(draw.integer(1, 4), draw.integer(2, 40)), spread=spread)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    return layer_model(case, scaled_by(case.options["spread"]), tf.keras.layers.Softmax())


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_softmax_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)


@pytest.mark.slow
def test_int8_to_int16_softmax_matches_tflm(tmp_path):
    """int8 in, int16 out (scale 1/65536, zero point -32768): TFLM runs it, the converter never writes it, so a
    converted int8 SOFTMAX has its output retyped."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from conformance.harness import converted, edited

    case = next(c for c in CASES if not c.int16)

    def to_int16_output(model):
        graph = model.subgraphs[0]
        tensor = graph.tensors[graph.outputs[0]]
        tensor.type = schema.TensorType.INT16
        tensor.quantization.scale, tensor.quantization.zeroPoint = [1.0 / 65536], [-32768]

    model, engine = check_case(case, build, tmp_path, model_bytes=edited(converted(case, build), to_int16_output))
    assert model.tensors[model.outputs[0]].dtype == "int16"
    assert any(step.function == "td_softmax_s8_s16" for step in engine.plan.steps)
