"""Small int8 models tinydeploy builds itself (no TensorFlow), with the flatbuffer object API of the TFLite
schema that tflite_micro ships: the HIL suite's sine model and `lab check`'s self-test firmware.

The weights are constructed, not trained: the sine model is the piecewise-linear interpolation of sin(x)
through 16 knots on [0, 2*pi], written as a ReLU MLP (1 -> 16 -> 16 -> 1, the classic "hello world" shape).
Activations are quantized from a float forward pass over calibration inputs, weights per tensor
(symmetric), biases as int32 with scale input_scale * weight_scale, as TFLite's int8 scheme defines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tinydeploy.model.tflite import TfliteModel, parse_tflite

SINE_KNOTS = 16
SINE_RANGE = (0.0, 2 * math.pi)


@dataclass(frozen=True)
class Dense:
    weights: np.ndarray  # float, [units, inputs] (TFLite's FULLY_CONNECTED layout)
    bias: np.ndarray  # float, [units]
    relu: bool


def _affine(low: float, high: float) -> tuple[float, int]:
    """int8 scale and zero point covering [low, high] (always including 0, as TFLite requires)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 or 1.0 / 255.0
    zero_point = int(round(-128 - low / scale))
    return scale, max(-128, min(127, zero_point))


def dense_int8_model(name: str, layers: list[Dense], calibration: np.ndarray) -> bytes:
    """A full-int8 TFLite flatbuffer of FULLY_CONNECTED layers, activations calibrated on `calibration`
    ([samples, inputs], float)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    ranges = [(float(calibration.min()), float(calibration.max()))]
    values = calibration.astype(np.float64)
    for layer in layers:
        values = values @ layer.weights.T.astype(np.float64) + layer.bias
        if layer.relu:
            values = np.maximum(values, 0.0)
        ranges.append((float(values.min()), float(values.max())))

    model = schema.ModelT()
    model.version = 3
    model.description = f"{name}: built by tinydeploy (no TensorFlow)".encode()
    model.buffers = [schema.BufferT()]  # buffer 0: the empty sentinel
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 4
    model.operatorCodes = [code]
    graph = schema.SubGraphT()
    graph.name = name.encode()
    graph.tensors, graph.operators = [], []

    def add_tensor(label: str, shape, dtype, scales, zero_points, data: np.ndarray | None = None) -> int:
        tensor = schema.TensorT()
        tensor.name = label.encode()
        tensor.shape = list(shape)
        tensor.type = dtype
        quant = schema.QuantizationParametersT()
        quant.scale = [float(s) for s in scales]
        quant.zeroPoint = [int(z) for z in zero_points]
        tensor.quantization = quant
        tensor.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
            model.buffers.append(buffer)
            tensor.buffer = len(model.buffers) - 1
        graph.tensors.append(tensor)
        return len(graph.tensors) - 1

    scale, zero_point = _affine(*ranges[0])
    current = add_tensor("input", (1, layers[0].weights.shape[1]), schema.TensorType.INT8, [scale], [zero_point])
    in_scale = scale
    for index, layer in enumerate(layers):
        w_scale = float(np.abs(layer.weights).max()) / 127.0 or 1.0
        weights = np.clip(np.round(layer.weights / w_scale), -127, 127).astype(np.int8)
        bias = np.round(layer.bias / (in_scale * w_scale)).astype(np.int32)
        w_index = add_tensor(f"dense{index}/weights", layer.weights.shape, schema.TensorType.INT8, [w_scale], [0],
                             weights)
        b_index = add_tensor(f"dense{index}/bias", layer.bias.shape, schema.TensorType.INT32,
                             [in_scale * w_scale], [0], bias)
        out_scale, out_zero = _affine(*ranges[index + 1])
        label = "output" if index == len(layers) - 1 else f"dense{index}/out"
        out_index = add_tensor(label, (1, layer.weights.shape[0]), schema.TensorType.INT8, [out_scale], [out_zero])
        operator = schema.OperatorT()
        operator.opcodeIndex = 0
        operator.inputs, operator.outputs = [current, w_index, b_index], [out_index]
        options = schema.FullyConnectedOptionsT()
        options.fusedActivationFunction = (schema.ActivationFunctionType.RELU if layer.relu
                                           else schema.ActivationFunctionType.NONE)
        operator.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
        operator.builtinOptions = options
        graph.operators.append(operator)
        current, in_scale = out_index, out_scale
    graph.inputs, graph.outputs = [0], [current]
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _sine_layers() -> list[Dense]:
    low, high = SINE_RANGE
    step = (high - low) / SINE_KNOTS
    knots = low + step * np.arange(SINE_KNOTS)
    slopes = np.diff(np.sin(low + step * np.arange(SINE_KNOTS + 1))) / step
    coefficients = np.concatenate([[slopes[0]], np.diff(slopes)])  # each hinge adds its change of slope
    return [
        Dense(np.ones((SINE_KNOTS, 1)), -knots, relu=True),  # h_i = relu(x - knot_i)
        Dense(np.eye(SINE_KNOTS), np.zeros(SINE_KNOTS), relu=True),  # the classic 16 -> 16 layer, identity here
        Dense(coefficients[None, :], np.array([math.sin(low)]), relu=False),
    ]


@lru_cache(maxsize=1)
def sine_model_bytes() -> bytes:
    calibration = np.linspace(*SINE_RANGE, 256)[:, None]
    return dense_int8_model("sine", _sine_layers(), calibration)


def sine_model() -> TfliteModel:
    """y = sin(x) for x in [0, 2*pi], int8 in and out, ~2.6 kB; the same bytes on every call."""
    return parse_tflite(sine_model_bytes(), Path("sine.tflite"))  # the path names the model; nothing is read


def quantize_input(model: TfliteModel, values: np.ndarray) -> bytes:
    tensor = model.tensors[model.inputs[0]]
    scale, zero_point = tensor.quant.scales[0], tensor.quant.zero_points[0]
    return np.clip(np.round(values / scale) + zero_point, -128, 127).astype(np.int8).tobytes()


def dequantize_output(model: TfliteModel, data: bytes) -> np.ndarray:
    tensor = model.tensors[model.outputs[0]]
    scale, zero_point = tensor.quant.scales[0], tensor.quant.zero_points[0]
    return (np.frombuffer(data, dtype=np.int8).astype(np.float64) - zero_point) * scale


def model_from_bytes(data: bytes) -> TfliteModel:
    """Parse a flatbuffer held in memory, named after its first subgraph (TfliteModel names come from paths)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    name = "model"
    try:
        graph = schema.Model.GetRootAsModel(data, 0).Subgraphs(0)
        raw = graph.Name() if graph is not None else None
        if raw:
            name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in raw.decode("utf-8", "replace"))[:40]
    except Exception:  # parse_tflite below reports a corrupt file properly
        pass
    return parse_tflite(data, Path(f"{name or 'model'}.tflite"))
