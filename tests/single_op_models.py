"""Single-operator TFLite models written directly with the schema's object API (the one tflite-micro ships), for
op variants TensorFlow's converter does not emit: SVDF (no Keras layer converts to it), int16x8 LSTMs (the
converter refuses 16x8 for UNIDIRECTIONAL_SEQUENCE_LSTM), time-major or batched LSTMs. TFLM runs these files as
it runs converted ones; they are the same flatbuffer format."""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

TYPES = {"int8": schema.TensorType.INT8, "int16": schema.TensorType.INT16, "int32": schema.TensorType.INT32,
         "int64": schema.TensorType.INT64, "float32": schema.TensorType.FLOAT32}


@dataclass
class TensorSpec:
    """One tensor: constant when `data` is given, a variable (state) tensor when `variable`."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int = 0
    data: np.ndarray | None = None
    variable: bool = False


@dataclass
class OpSpec:
    op: str  # a BuiltinOperator name
    inputs: list[int]  # tensor indices, -1 for an omitted optional input
    outputs: list[int]
    options_type: str | None = None  # a BuiltinOptions name
    options: object = None
    version: int = 1


@dataclass
class GraphSpec:
    tensors: list[TensorSpec]
    ops: list[OpSpec]
    inputs: list[int]
    outputs: list[int]
    description: str = field(default="tinydeploy test model")


def build_model(graph: GraphSpec) -> bytes:
    """The .tflite bytes of a one-subgraph model."""
    model = schema.ModelT()
    model.version = 3
    model.description = graph.description
    model.buffers = [schema.BufferT()]  # buffer 0: the empty buffer every non-constant tensor points at
    tensors = []
    for spec in graph.tensors:
        tensor = schema.TensorT()
        tensor.name = spec.name
        tensor.shape = list(spec.shape)
        tensor.type = TYPES[spec.dtype]
        tensor.isVariable = spec.variable
        if spec.scale is not None:
            tensor.quantization = schema.QuantizationParametersT()
            tensor.quantization.scale = [float(spec.scale)]
            tensor.quantization.zeroPoint = [int(spec.zero_point)]
        if spec.data is not None:
            buffer = schema.BufferT()
            buffer.data = np.ascontiguousarray(spec.data, dtype=np.dtype(spec.dtype)).reshape(-1).view(np.uint8)
            model.buffers.append(buffer)
            tensor.buffer = len(model.buffers) - 1
        tensors.append(tensor)
    codes: list[str] = []
    operators = []
    for spec in graph.ops:
        if spec.op not in codes:
            codes.append(spec.op)
        operator = schema.OperatorT()
        operator.opcodeIndex = codes.index(spec.op)
        operator.inputs = list(spec.inputs)
        operator.outputs = list(spec.outputs)
        if spec.options_type is not None:
            operator.builtinOptionsType = getattr(schema.BuiltinOptions, spec.options_type)
            operator.builtinOptions = spec.options
        operators.append(operator)
    model.operatorCodes = []
    for name in codes:
        code = schema.OperatorCodeT()
        code.builtinCode = getattr(schema.BuiltinOperator, name)
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        code.version = next(op.version for op in graph.ops if op.op == name)
        model.operatorCodes.append(code)
    subgraph = schema.SubGraphT()
    subgraph.tensors = tensors
    subgraph.operators = operators
    subgraph.inputs = list(graph.inputs)
    subgraph.outputs = list(graph.outputs)
    subgraph.name = "main"
    model.subgraphs = [subgraph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def options(cls_name: str, **values):
    """A builtin options object of the schema with the given fields set."""
    obj = getattr(schema, cls_name)()
    for key, value in values.items():
        if not hasattr(obj, key):
            raise AttributeError(f"{cls_name} has no field {key}")
        setattr(obj, key, value)
    return obj


def random_int(rng, dtype: str, shape, low: int | None = None, high: int | None = None) -> np.ndarray:
    info = np.iinfo(np.dtype(dtype))
    low = info.min if low is None else low
    high = info.max if high is None else high
    return rng.integers(low, high + 1, size=shape, dtype=np.int64).astype(dtype)


def float32(value: float) -> float:
    return float(np.float32(value))
