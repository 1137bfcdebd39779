"""QUANTIZE int8 -> int8 (a rescale): a float-input model whose input is edited to int8 with several scales."""

from __future__ import annotations

import pytest

from conformance import test_fully_connected
from conformance.harness import assert_matches_tflm, converted


@pytest.mark.slow
@pytest.mark.parametrize("scale, zero_point", [(0.05, 3), (0.5, -100), (0.004, 0)])
def test_int8_requantize_matches_tflm(scale, zero_point, tmp_path):
    pytest.importorskip("tensorflow")
    from tflite_edit import edit_tflite
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from tinydeploy.engine.host import HostEngine
    from tinydeploy.model.tflite import parse_tflite

    float_case = next(c for c in test_fully_connected.CASES if c.float_io)

    def to_int8_input(model):
        graph = model.subgraphs[0]
        tensor = graph.tensors[graph.inputs[0]]
        tensor.type = schema.TensorType.INT8
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale, tensor.quantization.zeroPoint = [scale], [zero_point]

    model_bytes = edit_tflite(converted(float_case, test_fully_connected.build), to_int8_input)
    model = parse_tflite(model_bytes)
    assert model.op_names[0] == "QUANTIZE" and model.tensors[model.inputs[0]].dtype == "int8"
    engine = HostEngine.build(model, tmp_path)
    assert_matches_tflm(engine, model, count=6, seed=5, label=f"requantize-{scale}-{zero_point}")
