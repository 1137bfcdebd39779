"""QUANTIZE between integer types: converted float-input models whose input is retyped, so the first op rescales
int8 -> int8, int16 -> int8 or int8 -> int16 (float -> int8/int16 and int16 -> int16 run in other modules' cases,
int32 <-> int16 in the seanet models)."""

from __future__ import annotations

import pytest

from conformance import test_fully_connected
from conformance.harness import assert_matches_tflm, converted, edited


def retyped_input(case, dtype: str, scale: float, zero_point: int) -> bytes:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def change(model):
        graph = model.subgraphs[0]
        tensor = graph.tensors[graph.inputs[0]]
        tensor.type = getattr(schema.TensorType, dtype.upper())
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale, tensor.quantization.zeroPoint = [scale], [zero_point]

    return edited(converted(case, test_fully_connected.build), change)


@pytest.mark.slow
@pytest.mark.parametrize("source, target, scale, zero_point", [
    ("int8", "int8", 0.05, 3), ("int8", "int8", 0.5, -100), ("int8", "int8", 0.004, 0),
    ("int16", "int8", 0.0004, 0), ("int16", "int8", 0.01, 0), ("int8", "int16", 0.02, -7), ("int8", "int16", 0.3, 11),
])
def test_requantize_matches_tflm(source, target, scale, zero_point, tmp_path):
    pytest.importorskip("tensorflow")
    from tinydeploy.engine.host import HostEngine
    from tinydeploy.model.tflite import parse_tflite

    float_case = next(c for c in test_fully_connected.CASES if c.float_io and c.int16 == (target == "int16"))
    model = parse_tflite(retyped_input(float_case, source, scale, zero_point))
    first = model.operators[0]
    assert first.op == "QUANTIZE" and model.tensors[first.inputs[0]].dtype == source
    assert model.tensors[first.outputs[0]].dtype == target
    engine = HostEngine.build(model, tmp_path)
    assert_matches_tflm(engine, model, count=6, seed=5, label=f"requantize-{source}-{target}-{scale}-{zero_point}")
