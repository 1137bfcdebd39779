"""Read a .tflite flatbuffer into plain Python objects, without TensorFlow.

The schema bindings come from the `tflite-micro` package (the same schema TFLM itself reads).
Everything read from the file is validated here, so later stages can trust indices and shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import read_input_file, sha256_bytes

TFLITE_IDENTIFIER = b"TFL3"
MAX_TENSOR_ELEMENTS = 1 << 30  # far beyond any microcontroller; guards against absurd shapes

# TensorType enum of the TFLite schema -> (numpy dtype name, bytes per element)
TENSOR_TYPES = {
    0: ("float32", 4), 1: ("float16", 2), 2: ("int32", 4), 3: ("uint8", 1), 4: ("int64", 8),
    5: ("string", 1), 6: ("bool", 1), 7: ("int16", 2), 8: ("complex64", 8), 9: ("int8", 1),
    10: ("float64", 8), 11: ("complex128", 16), 12: ("uint64", 8), 15: ("uint32", 4), 16: ("uint16", 2),
    17: ("int4", 1),
}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PADDINGS = {0: "SAME", 1: "VALID"}


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


def builtin_op_names() -> dict[int, str]:
    schema = _schema()
    return {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}


@dataclass(frozen=True)
class Quantization:
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    itemsize: int
    buffer: int
    data: np.ndarray | None  # constant data (weights, biases, shapes), raw bytes as uint8
    quant: Quantization | None
    is_variable: bool = False

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        if self.dtype == "int4":
            return (self.elements + 1) // 2
        return self.elements * self.itemsize

    @property
    def is_constant(self) -> bool:
        return self.data is not None and self.data.size > 0

    def values(self) -> np.ndarray:
        """The constant data as a typed array of the tensor's shape."""
        if self.data is None:
            raise ValueError(f"tensor {self.name} has no constant data")
        return np.frombuffer(self.data.tobytes(), dtype=np.dtype(self.dtype)).reshape(self.shape)


@dataclass
class Operator:
    index: int
    op: str  # builtin name, e.g. "CONV_2D", or "CUSTOM:<name>"
    version: int
    inputs: tuple[int, ...]  # -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)

    @property
    def activation(self) -> str:
        return ACTIVATIONS.get(self.options.get("fusedActivationFunction", 0), "NONE")

    @property
    def padding(self) -> str:
        return PADDINGS.get(self.options.get("padding", 1), "VALID")


@dataclass
class TfliteModel:
    path: Path | None
    raw: bytes
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraph_count: int
    description: str = ""

    @cached_property
    def sha256(self) -> str:
        return sha256_bytes(self.raw)

    @property
    def name(self) -> str:
        return self.path.stem if self.path else "model"

    @property
    def size_bytes(self) -> int:
        return len(self.raw)

    @property
    def op_names(self) -> list[str]:
        return [op.op for op in self.operators]

    @property
    def distinct_ops(self) -> list[str]:
        return sorted(set(self.op_names))

    @property
    def weights_bytes(self) -> int:
        """Bytes of constant tensor data (weights, biases, shape constants) that go to flash."""
        return sum(t.nbytes for t in self.tensors if t.is_constant)

    def is_quantized_int8(self) -> bool:
        """True when every activation between ops is int8 (inputs, outputs and intermediates)."""
        activations = [t for t in self.tensors if not t.is_constant]
        return bool(activations) and all(t.dtype == "int8" for t in activations)

    def float_tensors(self) -> list[Tensor]:
        return [t for t in self.tensors if t.dtype in ("float32", "float16") and not t.is_constant]


def _bad(path: Path | None, detail: str) -> TinydeployError:
    where = f"{path}" if path else "model"
    return TinydeployError(f"{where} is not a valid TFLite model: {detail}",
                           "give a .tflite file written by the TFLite converter (or run tinydeploy convert)")


def _decode_name(raw) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    return str(raw)


def load_tflite(path: Path | str) -> TfliteModel:
    path = Path(path)
    data = read_input_file(path, "model file")
    return parse_tflite(data, path)


def parse_tflite(data: bytes, path: Path | None = None) -> TfliteModel:
    if len(data) < 8:
        raise _bad(path, f"only {len(data)} bytes")
    if data[4:8] != TFLITE_IDENTIFIER:
        raise _bad(path, "no TFL3 identifier (not a TFLite flatbuffer)")
    schema = _schema()
    try:
        root = schema.Model.GetRootAsModel(data, 0)
        model = schema.ModelT.InitFromObj(root)
    except Exception as exc:  # the generated reader raises anything on corrupt input
        raise _bad(path, f"corrupt or truncated flatbuffer ({type(exc).__name__})") from exc
    return _validate(model, data, path)


def _validate(model, data: bytes, path: Path | None) -> TfliteModel:
    if not model.subgraphs:
        raise _bad(path, "it has no subgraph")
    graph = model.subgraphs[0]
    buffers = model.buffers or []
    op_codes = model.operatorCodes or []
    names = builtin_op_names()

    tensors: list[Tensor] = []
    for index, t in enumerate(graph.tensors or []):
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        if any(d < 0 for d in shape):
            raise _bad(path, f"tensor {index} has a negative dimension {shape}")
        elements = 1
        for d in shape:
            elements *= d
        if elements > MAX_TENSOR_ELEMENTS:
            raise _bad(path, f"tensor {index} has an absurd shape {shape} ({elements} elements)")
        if t.type not in TENSOR_TYPES:
            raise _bad(path, f"tensor {index} has unknown type {t.type}")
        dtype, itemsize = TENSOR_TYPES[t.type]
        if not 0 <= t.buffer < max(len(buffers), 1):
            raise _bad(path, f"tensor {index} refers to buffer {t.buffer} of {len(buffers)}")
        content = None
        if buffers and t.buffer > 0:
            buf = buffers[t.buffer]
            if buf.data is not None and len(buf.data):
                content = np.asarray(buf.data, dtype=np.uint8)
            elif getattr(buf, "offset", 0) and buf.offset > 1:
                if buf.offset + buf.size > len(data):
                    raise _bad(path, f"buffer {t.buffer} lies outside the file")
                content = np.frombuffer(data, dtype=np.uint8, count=buf.size, offset=buf.offset)
        quant = None
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale):
            zero_points = tuple(int(z) for z in (q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale)))
            quant = Quantization(tuple(float(s) for s in q.scale), zero_points, int(q.quantizedDimension))
        tensor = Tensor(index, _decode_name(t.name), shape, dtype, itemsize, int(t.buffer), content, quant,
                        bool(t.isVariable))
        if content is not None and dtype not in ("string", "int4") and content.size != tensor.nbytes:
            raise _bad(path, f"tensor {index} ({tensor.name}) has {content.size} bytes of data for shape {shape}")
        tensors.append(tensor)

    def check_indices(indices, what: str, allow_optional: bool) -> tuple[int, ...]:
        result = tuple(int(i) for i in (indices if indices is not None else []))
        for i in result:
            if i == -1 and allow_optional:
                continue
            if not 0 <= i < len(tensors):
                raise _bad(path, f"{what} refers to tensor {i} of {len(tensors)}")
        return result

    operators: list[Operator] = []
    for index, op in enumerate(graph.operators or []):
        if not 0 <= op.opcodeIndex < len(op_codes):
            raise _bad(path, f"operator {index} uses opcode {op.opcodeIndex} of {len(op_codes)}")
        code = op_codes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        if builtin == 32:  # CUSTOM
            name = f"CUSTOM:{_decode_name(code.customCode)}"
        else:
            name = names.get(builtin, f"UNKNOWN_OP_{builtin}")
        options = dict(vars(op.builtinOptions)) if op.builtinOptions is not None else {}
        operators.append(Operator(index, name, int(code.version), check_indices(op.inputs, f"operator {index}", True),
                                  check_indices(op.outputs, f"operator {index}", False), options))

    inputs = check_indices(graph.inputs, "the graph inputs", False)
    outputs = check_indices(graph.outputs, "the graph outputs", False)
    if not inputs or not outputs:
        raise _bad(path, "the graph has no inputs or no outputs")
    _check_execution_order(operators, inputs, tensors, path)
    return TfliteModel(path, bytes(data), tensors, operators, inputs, outputs, len(model.subgraphs),
                       _decode_name(model.description))


def _check_execution_order(operators: list[Operator], inputs, tensors: list[Tensor], path) -> None:
    """Every operator input must exist before the operator runs (no cycles, no dangling tensors)."""
    available = set(inputs) | {t.index for t in tensors if t.is_constant or t.is_variable}
    for op in operators:
        for i in op.inputs:
            if i != -1 and i not in available:
                raise _bad(path, f"operator {op.index} ({op.op}) reads tensor {i} before any operator writes it")
        available.update(op.outputs)
