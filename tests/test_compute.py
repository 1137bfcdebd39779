"""MACs of single-op models built with the TFLite schema, each against the figure its layer's definition gives,
and the classification of models no file in ../shared has (hybrid fully connected, float IO around int8)."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tinydeploy.analysis.compute import op_costs, total_macs, unknown_mac_ops
from tinydeploy.model.tflite import parse_tflite

TYPES = {"float32": schema.TensorType.FLOAT32, "int8": schema.TensorType.INT8, "int32": schema.TensorType.INT32,
         "uint8": schema.TensorType.UINT8, "int16": schema.TensorType.INT16}


def single_op_model(op: str, inputs: list, outputs: list, options=None, options_type: int = 0,
                    custom: str = "") -> bytes:
    """One operator. Each input is (shape, dtype, constant?, quantized?) or None (an omitted optional input);
    each output (shape, dtype, quantized?). Constants hold zeros (MACs depend on shapes only); the
    non-constant inputs are the graph's inputs, the first output its output."""
    tensors, buffers, op_inputs = [], [schema.BufferT()], []

    def tensor(shape, dtype, data: bytes | None, quantized: bool):
        t = schema.TensorT()
        t.name = f"t{len(tensors)}".encode()
        t.shape = list(shape)
        t.type = TYPES[dtype]
        t.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = list(data)
            buffers.append(buffer)
            t.buffer = len(buffers) - 1
        if quantized:
            q = schema.QuantizationParametersT()
            q.scale, q.zeroPoint = [0.05], [0]
            t.quantization = q
        tensors.append(t)
        return len(tensors) - 1

    for item in inputs:
        if item is None:
            op_inputs.append(-1)
            continue
        shape, dtype, constant, quantized = item
        data = np.zeros(shape, np.dtype(dtype)).tobytes() if constant else None
        op_inputs.append(tensor(shape, dtype, data, quantized))
    op_outputs = [tensor(shape, dtype, None, quantized) for shape, dtype, quantized in outputs]
    operator = schema.OperatorT()
    operator.opcodeIndex = 0
    operator.inputs, operator.outputs = op_inputs, op_outputs
    if options is not None:
        operator.builtinOptionsType, operator.builtinOptions = options_type, options
    code = schema.OperatorCodeT()
    builtin = schema.BuiltinOperator.CUSTOM if custom else getattr(schema.BuiltinOperator, op)
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.customCode = custom.encode() if custom else None
    code.version = 1
    graph = schema.SubGraphT()
    graph.tensors = tensors
    graph.inputs = [i for i, item in zip(op_inputs, inputs) if item is not None and not item[2]]
    graph.outputs = [op_outputs[0]]
    graph.operators = [operator]
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes, model.subgraphs, model.buffers = [code], [graph], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def macs_of(data: bytes) -> int | None:
    (cost,) = op_costs(parse_tflite(data))
    return cost.macs


def test_transpose_conv_scatters_every_input_element_over_a_kernel_window_of_every_output_channel():
    # 4x4x8 input, 3x3 kernel to 16 channels, stride 2 -> 8x8x16: each of the 128 input values is multiplied
    # into 3*3*16 output positions
    data = single_op_model("TRANSPOSE_CONV", [((4,), "int32", True, False), ((16, 3, 3, 8), "float32", True, False),
                                              ((1, 4, 4, 8), "float32", False, False)],
                           [((1, 8, 8, 16), "float32", False)])
    assert macs_of(data) == 4 * 4 * 8 * (3 * 3 * 16)


@pytest.mark.parametrize("adj_x", [False, True])
def test_batch_matmul_is_one_dot_product_of_the_inner_size_per_output(adj_x):
    # batch 2 of [3 x 4] @ [4 x 5]; with adj_x the left operand is stored transposed ([4 x 3])
    options = schema.BatchMatMulOptionsT()
    options.adjX = adj_x
    left = (2, 4, 3) if adj_x else (2, 3, 4)
    data = single_op_model("BATCH_MATMUL", [(left, "float32", False, False), ((2, 4, 5), "float32", False, False)],
                           [((2, 3, 5), "float32", False)], options, schema.BuiltinOptions.BatchMatMulOptions)
    assert macs_of(data) == 2 * 3 * 5 * 4


def test_conv_3d():
    # 3x3x3 kernel over 2 input channels to 8 channels, 2x2x2 outputs
    data = single_op_model("CONV_3D", [((1, 4, 4, 4, 2), "float32", False, False),
                                       ((3, 3, 3, 2, 8), "float32", True, False)],
                           [((1, 2, 2, 2, 8), "float32", False)])
    assert macs_of(data) == (2 * 2 * 2 * 8) * (3 * 3 * 3 * 2)


def test_rnn_is_input_and_recurrent_products_per_step():
    data = single_op_model("UNIDIRECTIONAL_SEQUENCE_RNN", [
        ((1, 5, 3), "float32", False, False), ((4, 3), "float32", True, False), ((4, 4), "float32", True, False),
        ((4,), "float32", True, False), ((1, 4), "float32", True, False)], [((1, 5, 4), "float32", False)])
    assert macs_of(data) == 5 * 4 * (3 + 4)  # 5 steps of 4 units over 3 inputs and 4 recurrent values


def test_lstm_with_cifg_peepholes_and_projection():
    """CIFG (no input gate: 3 gates), forget and output peepholes, a projection from 4 cells to 2 outputs."""
    n_input, n_cell, n_output, steps = 3, 4, 2, 5
    weights_in, weights_rec = ((n_cell, n_input), "float32", True, False), ((n_cell, n_output), "float32", True,
                                                                             False)
    vector = ((n_cell,), "float32", True, False)
    inputs = [((1, steps, n_input), "float32", False, False),
              None, weights_in, weights_in, weights_in,  # 1-4: input weights, input gate absent
              None, weights_rec, weights_rec, weights_rec,  # 5-8: recurrent weights
              None, vector, vector,  # 9-11: peepholes to the forget and output gates
              None, vector, vector, vector,  # 12-15: biases (no input gate)
              ((n_output, n_cell), "float32", True, False), None,  # 16-17: projection
              ((1, n_output), "float32", True, False), ((1, n_cell), "float32", True, False),  # 18-19: states
              None, None, None, None]  # 20-23: no layer normalization
    data = single_op_model("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, [((1, steps, n_output), "float32", False)])
    per_step = 3 * n_cell * (n_input + n_output) + 2 * n_cell + 3 * n_cell + n_output * n_cell
    assert macs_of(data) == steps * per_step


def test_elementwise_products_count_one_per_element_and_additions_none():
    mul = single_op_model("MUL", [((1, 8, 8, 3), "float32", False, False), ((3,), "float32", True, False)],
                          [((1, 8, 8, 3), "float32", False)])
    add = single_op_model("ADD", [((1, 8, 8, 3), "float32", False, False), ((3,), "float32", True, False)],
                          [((1, 8, 8, 3), "float32", False)])
    assert macs_of(mul) == 8 * 8 * 3 and macs_of(add) == 0


def test_an_op_whose_arithmetic_is_unknown_is_named_not_counted_as_zero():
    model = parse_tflite(single_op_model("", [((1, 16), "float32", False, False)], [((1, 16), "float32", False)],
                                         custom="MyFilter"))
    costs = op_costs(model)
    assert costs[0].macs is None
    assert total_macs(costs) == 0 and unknown_mac_ops(costs) == ["CUSTOM:MyFilter"]


# ------------------------------------------------------------------------------ classification


def fully_connected(activation: str, weights: str, quantized: bool) -> bytes:
    return single_op_model("FULLY_CONNECTED", [((1, 4), activation, False, quantized),
                                               ((2, 4), weights, True, weights != "float32")],
                           [((1, 2), activation, quantized)])


def test_float_activations_with_int8_weights_are_dynamic_range_quantized():
    model = parse_tflite(fully_connected("float32", "int8", False))
    assert model.classification.kind == "hybrid" and model.classification.hybrid_ops == ("FULLY_CONNECTED",)
    assert parse_tflite(fully_connected("float32", "float32", False)).classification.kind == "float"
    assert parse_tflite(fully_connected("int8", "int8", True)).classification.kind == "int8"
    assert parse_tflite(fully_connected("uint8", "uint8", True)).classification.kind == "uint8"


def test_refusals_name_what_the_model_is_and_the_way_that_works():
    from tinydeploy.engines.support import require_engine
    from tinydeploy.errors import TinydeployError

    hybrid = parse_tflite(fully_connected("float32", "int8", False))
    for engine in ("tflm", "native"):
        with pytest.raises(TinydeployError) as caught:
            require_engine(hybrid, engine)
        line = caught.value.one_line()
        assert "dynamic-range" in line and "tinydeploy convert" in line and "--calib" in line
        assert "--engine" not in line  # no engine runs it: converting does


def _partly_quantized(input_dtype: str) -> bytes:
    """input -> (QUANTIZE) -> DEQUANTIZE -> float RELU -> QUANTIZE -> int8 output: float32 arithmetic in the middle."""
    from tests.single_op_models import GraphSpec, OpSpec, TensorSpec, build_model

    tensors = [TensorSpec("in", (1, 4), input_dtype, 0.05 if input_dtype == "int8" else None),
               TensorSpec("q", (1, 4), "int8", 0.05), TensorSpec("f", (1, 4), "float32"),
               TensorSpec("r", (1, 4), "float32"), TensorSpec("out", (1, 4), "int8", 0.05)]
    ops = [OpSpec("DEQUANTIZE", [1], [2]), OpSpec("RELU", [2], [3]), OpSpec("QUANTIZE", [3], [4])]
    if input_dtype == "float32":
        ops.insert(0, OpSpec("QUANTIZE", [0], [1]))
    else:
        ops[0] = OpSpec("DEQUANTIZE", [0], [2])
    return build_model(GraphSpec(tensors, ops, [0], [4]))


def test_a_partly_quantized_model_with_int8_input_is_not_sent_back_to_convert(tmp_path):
    """convert calibrates float32 inputs only: for an int8-input model its hint would go round in a circle."""
    from tinydeploy.engines.support import require_engine
    from tinydeploy.errors import TinydeployError
    from tinydeploy.model.convert import convert_to_int8
    from tinydeploy.model.tflite import load_tflite

    (tmp_path / "mixed.tflite").write_bytes(_partly_quantized("int8"))
    mixed = load_tflite(tmp_path / "mixed.tflite")
    assert mixed.classification.kind == "mixed" and mixed.classification.float_ops == ("RELU",)
    for engine in ("tflm", "native"):
        with pytest.raises(TinydeployError) as caught:
            require_engine(mixed, engine)
        line = caught.value.one_line()
        assert "partly quantized" in line and "RELU" in line and "already int8" in line
        assert "tinydeploy convert" not in line and "replace the layer" in line
    with pytest.raises(TinydeployError) as caught:  # what the old hint led to
        convert_to_int8(tmp_path / "mixed.tflite", "random")
    assert "int8" in caught.value.one_line()

    (tmp_path / "float_in.tflite").write_bytes(_partly_quantized("float32"))
    float_in = load_tflite(tmp_path / "float_in.tflite")
    assert float_in.classification.kind == "mixed"
    with pytest.raises(TinydeployError) as caught:
        require_engine(float_in, "native")
    assert "tinydeploy convert" in caught.value.one_line() and "--calib" in caught.value.one_line()


def test_a_model_no_engine_runs_because_of_upsampling_names_the_layer_that_does():
    """Keras 3's UpSampling2D converts to TILE, which neither TFLM (pinned or host) nor the native engine has."""
    from tinydeploy.engines.support import require_engine
    from tinydeploy.errors import TinydeployError

    tile = parse_tflite(single_op_model("TILE", [((1, 2, 1, 3), "int8", False, True), ((4,), "int32", True, False)],
                                        [((1, 2, 2, 3), "int8", True)]))
    for engine in ("tflm", "native"):
        with pytest.raises(TinydeployError) as caught:
            require_engine(tile, engine)
        line = caught.value.one_line()
        assert "no tinydeploy engine runs" in line and "TILE" in line
        assert "keras.layers.Resizing(height, width, interpolation='nearest')" in line


def test_a_model_no_engine_runs_because_of_gelu_names_a_replacement_both_run():
    """PyTorch's nn.GELU converts to GELU, which neither engine has; the refusal gave no way out."""
    from tinydeploy.engines.support import require_engine
    from tinydeploy.errors import TinydeployError

    gelu = parse_tflite(single_op_model("GELU", [((1, 8), "int8", False, True)], [((1, 8), "int8", True)]))
    for engine in ("tflm", "native"):
        with pytest.raises(TinydeployError) as caught:
            require_engine(gelu, engine)
        line = caught.value.one_line()
        assert "no tinydeploy engine runs" in line and "x * sigmoid(1.702 * x)" in line
