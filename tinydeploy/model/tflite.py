"""Read a .tflite flatbuffer into plain Python objects, without TensorFlow.

The schema bindings come from the `tflite-micro` package (the same schema TFLM itself reads).
Everything read from the file is validated here, so later stages can trust indices and shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import check_input_file, read_input_file, sha256_bytes

TFLITE_IDENTIFIER = b"TFL3"
MAX_TENSOR_ELEMENTS = 1 << 30  # far beyond any microcontroller; guards against absurd shapes
MAX_RANK = 8  # TFLite kernels handle at most 6 dimensions
MAX_MODEL_BYTES = 512 << 20  # no microcontroller model comes near; keeps /dev/zero and the like out
WORK_PER_FILE_BYTE = 4  # items the reader may unpack per byte of file (see _WorkBudget)
CUSTOM_OP_CODE = 32

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

    @cached_property
    def classification(self):
        """What the model computes in (int8, int16x8, float, hybrid, NPU, ...): a model.classify.ModelClass."""
        from tinydeploy.model.classify import classify

        return classify(self)

    def is_quantized_int8(self) -> bool:
        """True when the model computes in int8 (whatever its input and output types)."""
        return self.classification.kind == "int8"

    def float_tensors(self) -> list[Tensor]:
        """Float tensors that operators compute on (not the unused ones some converters leave behind)."""
        used = {i for op in self.operators for i in (*op.inputs, *op.outputs) if i != -1} | set(self.inputs)
        return [t for t in self.tensors if t.dtype in ("float32", "float16") and not t.is_constant
                and t.index in used]


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
    check_input_file(path, "model file", "give a .tflite file")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise _bad(path, f"{path.stat().st_size:,} bytes, more than the {MAX_MODEL_BYTES >> 20} MB tinydeploy reads")
    data = read_input_file(path, "model file")
    return parse_tflite(data, path)


def parse_tflite(data: bytes, path: Path | None = None) -> TfliteModel:
    """Read and validate a model; any defect raises TinydeployError (never another exception)."""
    data = bytes(data)
    if len(data) < 8:
        raise _bad(path, f"only {len(data)} bytes")
    if data[4:8] != TFLITE_IDENTIFIER:
        raise _bad(path, "no TFL3 identifier (not a TFLite flatbuffer)")
    if len(data) > MAX_MODEL_BYTES:
        raise _bad(path, f"{len(data):,} bytes, more than the {MAX_MODEL_BYTES >> 20} MB tinydeploy reads")
    try:
        raw = _read_flatbuffer(data, _WorkBudget(path, len(data)))
    except TinydeployError:
        raise
    except Exception as exc:  # the generated reader raises anything on corrupt input
        raise _bad(path, f"corrupt or truncated flatbuffer ({_reader_complaint(exc)})") from exc
    return _validate(raw, data, path)


def _reader_complaint(exc: Exception) -> str:
    import struct

    if isinstance(exc, (struct.error, IndexError)):
        return "an offset points outside the file"
    if isinstance(exc, ValueError):
        return "a vector or string runs past the end of the file"
    return type(exc).__name__


class _WorkBudget:
    """Flatbuffers may point many tables at one shared string or vector, so a small file can unpack into
    gigabytes; a file written by a converter never unpacks into much more than its own size."""

    def __init__(self, path: Path | None, file_bytes: int):
        self.path = path
        self.left = WORK_PER_FILE_BYTE * file_bytes + 4096

    def spend(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise _bad(self.path, "its tables share data so often that reading them would take a huge amount of "
                                  "memory (a crafted or corrupt file)")


@dataclass
class _RawTensor:
    shape: tuple[int, ...]
    type: int
    buffer: int
    name: str
    scales: tuple[float, ...]
    zero_points: tuple[int, ...] | None
    axis: int
    is_variable: bool


@dataclass
class _RawOperator:
    opcode_index: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict


@dataclass
class _RawSubgraph:
    tensors: list[_RawTensor]
    operators: list[_RawOperator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass
class _RawModel:
    subgraphs: list[_RawSubgraph]
    op_codes: list[tuple[int, int, str, int]]  # builtin code, deprecated code, custom name, version
    buffers: object  # the schema's lazy Model: buffers are read only when a tensor refers to them
    buffer_count: int
    description: str


def _int_vector(value, budget: _WorkBudget) -> tuple[int, ...] | None:
    """A flatbuffer int vector (a numpy view, or 0 when absent) as a tuple of Python ints."""
    if isinstance(value, int):
        return None
    budget.spend(len(value))
    return tuple(int(v) for v in value)


def _read_flatbuffer(data: bytes, budget: _WorkBudget) -> _RawModel:
    """Everything tinydeploy uses, read through the schema's lazy accessors with every step paid for."""
    schema = _schema()
    root = schema.Model.GetRootAsModel(data, 0)
    op_codes = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        custom = code.CustomCode()
        budget.spend(1 + len(custom or b""))
        op_codes.append((int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()), _decode_name(custom),
                         int(code.Version())))
    subgraphs = []
    for g in range(root.SubgraphsLength()):
        graph = root.Subgraphs(g)
        budget.spend(1)
        tensors = []
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            name = t.Name()
            budget.spend(1 + len(name or b""))
            rank = int(t.ShapeLength())
            if rank > MAX_RANK:
                where = "" if g == 0 else f"subgraph {g}: "
                raise _bad(budget.path, f"{where}tensor {i} has rank {rank} (at most {MAX_RANK} is supported)")
            shape = _int_vector(t.ShapeAsNumpy(), budget) or ()
            scales: tuple[float, ...] = ()
            zero_points = None
            axis = 0
            q = t.Quantization()
            if q is not None:
                scale_vector = q.ScaleAsNumpy()
                if not isinstance(scale_vector, int):
                    budget.spend(len(scale_vector))
                    scales = tuple(float(s) for s in scale_vector)
                zero_points = _int_vector(q.ZeroPointAsNumpy(), budget)
                axis = int(q.QuantizedDimension())
            tensors.append(_RawTensor(shape, int(t.Type()), int(t.Buffer()), _decode_name(name), scales,
                                      zero_points, axis, bool(t.IsVariable())))
        operators = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            budget.spend(1)
            options_table = op.BuiltinOptions()
            options_object = schema.BuiltinOptionsCreator(op.BuiltinOptionsType(), options_table) \
                if options_table is not None else None
            options = dict(vars(options_object)) if options_object is not None else {}
            budget.spend(len(options) + sum(len(v) for v in options.values() if hasattr(v, "__len__")))
            operators.append(_RawOperator(int(op.OpcodeIndex()), _int_vector(op.InputsAsNumpy(), budget) or (),
                                          _int_vector(op.OutputsAsNumpy(), budget) or (), options))
        subgraphs.append(_RawSubgraph(tensors, operators, _int_vector(graph.InputsAsNumpy(), budget) or (),
                                      _int_vector(graph.OutputsAsNumpy(), budget) or ()))
    description = root.Description()
    budget.spend(len(description or b""))
    return _RawModel(subgraphs, op_codes, root, int(root.BuffersLength()), _decode_name(description))


def _buffer_content(raw: _RawModel, index: int, data: bytes, path: Path | None) -> np.ndarray | None:
    try:
        buf = raw.buffers.Buffers(index)
        if buf is None:
            return None
        content = buf.DataAsNumpy()
        offset, size = int(buf.Offset()), int(buf.Size())
    except Exception as exc:  # read lazily, so the reader's complaints about corrupt offsets come here
        raise _bad(path, f"buffer {index} is corrupt ({_reader_complaint(exc)})") from exc
    if not isinstance(content, int) and len(content):
        return content
    if offset > 1:  # models over 2 GB keep buffers after the flatbuffer (offset 1 marks "none")
        if offset + size > len(data):
            raise _bad(path, f"buffer {index} lies outside the file")
        return np.frombuffer(data, dtype=np.uint8, count=size, offset=offset)
    return None


ZERO_POINT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def _check_quantization(index: int, t: _RawTensor, dtype: str, constant: bool, path) -> Quantization | None:
    if not t.scales:
        return None
    scales = t.scales
    zero_points = t.zero_points if t.zero_points else (0,) * len(scales)
    where = f"tensor {index} ({t.name[:40]})"
    if len(zero_points) != len(scales):
        raise _bad(path, f"{where} has {len(scales)} quantization scales but {len(zero_points)} zero points")
    if not all(math.isfinite(s) and s >= 0 for s in scales) or (not constant and min(scales) <= 0):
        raise _bad(path, f"{where} has an invalid quantization scale {_first_bad(scales)}")
    low, high = ZERO_POINT_RANGES.get(dtype, (-(1 << 31), (1 << 31) - 1))
    if not all(low <= z <= high for z in zero_points):
        raise _bad(path, f"{where} has a zero point outside {dtype}'s range")
    axis = t.axis
    if len(scales) > 1:
        if len(t.shape) == 1 and t.shape[0] == len(scales):
            # A 1-D tensor (a bias) has one axis its scales can follow, whatever quantized_dimension says: the
            # converter copies the filter's axis there (person_detect.tflite: 3), and TFLM never reads it.
            axis = 0
        elif not 0 <= axis < len(t.shape) or t.shape[axis] != len(scales):
            raise _bad(path, f"{where} has {len(scales)} per-channel scales along axis {axis} of shape {t.shape}")
    else:
        axis = 0
    return Quantization(scales, zero_points, axis)


def _first_bad(scales: tuple[float, ...]) -> float:
    return next((s for s in scales if not (math.isfinite(s) and s > 0)), scales[0])


def _validate(raw: _RawModel, data: bytes, path: Path | None) -> TfliteModel:
    if not raw.subgraphs:
        raise _bad(path, "it has no subgraph")
    names = builtin_op_names()
    op_names = []
    for builtin_code, deprecated_code, custom_name, _ in raw.op_codes:
        builtin = max(builtin_code, deprecated_code)
        if builtin == CUSTOM_OP_CODE:
            op_names.append(f"CUSTOM:{custom_name}")
        elif builtin in names:
            op_names.append(names[builtin])
        else:
            op_names.append(None)  # refused only if an operator uses it

    graphs = [_validate_subgraph(number, graph, raw, op_names, data, path)
              for number, graph in enumerate(raw.subgraphs)]
    _check_subgraph_calls(graphs, path)
    tensors, operators, inputs, outputs = graphs[0]
    if not inputs or not outputs:
        raise _bad(path, "the graph has no inputs or no outputs")
    return TfliteModel(path, data, tensors, operators, inputs, outputs, len(raw.subgraphs), raw.description)


def _validate_subgraph(number: int, graph: _RawSubgraph, raw: _RawModel, op_names: list, data: bytes, path):
    where = "" if number == 0 else f"subgraph {number}: "
    tensors: list[Tensor] = []
    for index, t in enumerate(graph.tensors):
        if len(t.shape) > MAX_RANK:
            raise _bad(path, f"{where}tensor {index} has rank {len(t.shape)} (at most {MAX_RANK} is supported)")
        if any(d < 0 for d in t.shape):
            raise _bad(path, f"{where}tensor {index} has a negative dimension {t.shape}")
        elements = math.prod(t.shape)
        if elements > MAX_TENSOR_ELEMENTS:
            raise _bad(path, f"{where}tensor {index} has an absurd shape {t.shape} ({elements} elements)")
        if t.type not in TENSOR_TYPES:
            raise _bad(path, f"{where}tensor {index} has unknown type {t.type}")
        dtype, itemsize = TENSOR_TYPES[t.type]
        if not 0 <= t.buffer < max(raw.buffer_count, 1):
            raise _bad(path, f"{where}tensor {index} refers to buffer {t.buffer} of {raw.buffer_count}")
        content = _buffer_content(raw, t.buffer, data, path) if raw.buffer_count and t.buffer > 0 else None
        quant = _check_quantization(index, t, dtype, content is not None and content.size > 0, path)
        tensor = Tensor(index, t.name, t.shape, dtype, itemsize, t.buffer, content, quant, t.is_variable)
        if content is not None and dtype not in ("string", "int4") and content.size != tensor.nbytes:
            raise _bad(path, f"{where}tensor {index} ({tensor.name[:40]}) has {content.size} bytes of data for "
                             f"shape {t.shape}")
        tensors.append(tensor)

    def check_indices(indices, what: str, allow_optional: bool) -> tuple[int, ...]:
        for i in indices:
            if i == -1 and allow_optional:
                continue
            if not 0 <= i < len(tensors):
                raise _bad(path, f"{where}{what} refers to tensor {i} of {len(tensors)}")
        return tuple(indices)

    operators: list[Operator] = []
    for index, op in enumerate(graph.operators):
        if not 0 <= op.opcode_index < len(op_names):
            raise _bad(path, f"{where}operator {index} uses opcode {op.opcode_index} of {len(op_names)}")
        name = op_names[op.opcode_index]
        if name is None:
            builtin_code, deprecated_code, _, _ = raw.op_codes[op.opcode_index]
            raise _bad(path, f"{where}operator {index} has the unknown operator code "
                             f"{max(builtin_code, deprecated_code)} (a newer or corrupt model)")
        operators.append(Operator(index, name, raw.op_codes[op.opcode_index][3],
                                  check_indices(op.inputs, f"operator {index}", True),
                                  check_indices(op.outputs, f"operator {index}", False), op.options))

    for op in operators:
        _check_operands(op, tensors, path, where)
    inputs = check_indices(graph.inputs, "the graph's input list", False)
    outputs = check_indices(graph.outputs, "the graph's output list", False)
    _check_execution_order(operators, inputs, outputs, tensors, path, where)
    return tensors, operators, inputs, outputs


# Operand ranks the kernels (TFLM's, the native engine's, the MAC counter) index without checking:
# op -> (inputs it needs: a count of leading inputs or the positions, {input position: allowed ranks, checked
# when present}, allowed ranks of output 0).
ANY_RANK = tuple(range(1, MAX_RANK + 1))
MATRIX_RANKS = tuple(range(2, MAX_RANK + 1))
_LSTM_WEIGHTS = {position: (2,) for position in (1, 2, 3, 4, 5, 6, 7, 8, 16)}
OPERAND_RANKS = {
    "CONV_2D": (2, {0: (4,), 1: (4,)}, (4,)),
    "DEPTHWISE_CONV_2D": (2, {0: (4,), 1: (4,)}, (4,)),
    "TRANSPOSE_CONV": (3, {0: (1,), 1: (4,), 2: (4,)}, (4,)),
    "CONV_3D": (2, {0: (5,), 1: (5,)}, (5,)),
    "CONV_3D_TRANSPOSE": (3, {0: (1,), 1: (5,), 2: (5,)}, (5,)),
    "FULLY_CONNECTED": (2, {1: (2,)}, ANY_RANK),
    "BATCH_MATMUL": (2, {0: MATRIX_RANKS, 1: MATRIX_RANKS}, MATRIX_RANKS),
    "AVERAGE_POOL_2D": (1, {0: (4,)}, (4,)),
    "MAX_POOL_2D": (1, {0: (4,)}, (4,)),
    # input, the forget/cell/output weights (the input gate's are absent in CIFG), the output state
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ((0, 2, 3, 4, 6, 7, 8), {0: (3,), **_LSTM_WEIGHTS}, (3,)),
    "LSTM": ((0, 2, 3, 4, 6, 7, 8), {0: (2,), **_LSTM_WEIGHTS}, (2,)),
    "SVDF": (3, {0: (2,), 1: (2,), 2: (2,)}, (2,)),
    "UNIDIRECTIONAL_SEQUENCE_RNN": (3, {0: (3,), 1: (2,), 2: (2,)}, (3,)),
    "RNN": (3, {0: (2,), 1: (2,), 2: (2,)}, (2,)),
}


def _check_operands(op: Operator, tensors: list[Tensor], path, where: str) -> None:
    rule = OPERAND_RANKS.get(op.op)
    if rule is None:
        return
    needed, input_ranks, output_ranks = rule
    required = tuple(range(needed)) if isinstance(needed, int) else needed
    what = f"{where}operator {op.index} ({op.op})"
    missing = [p for p in required if p >= len(op.inputs) or op.inputs[p] == -1]
    if missing or not op.outputs:
        raise _bad(path, f"{what} needs inputs {', '.join(map(str, required))} and an output; it lacks "
                         f"{', '.join(f'input {p}' for p in missing) or 'an output'}")
    for position, ranks in input_ranks.items():
        if position >= len(op.inputs) or op.inputs[position] == -1:
            continue
        shape = tensors[op.inputs[position]].shape
        if len(shape) not in ranks:
            raise _bad(path, f"{what} input {position} has shape {shape}, expected rank {_ranks_text(ranks)}")
    shape = tensors[op.outputs[0]].shape
    if len(shape) not in output_ranks:
        raise _bad(path, f"{what} output has shape {shape}, expected rank {_ranks_text(output_ranks)}")


def _ranks_text(ranks: tuple[int, ...]) -> str:
    return str(ranks[0]) if len(ranks) == 1 else f"{ranks[0]} to {ranks[-1]}"


def _called_subgraphs(op: Operator) -> list[int]:
    """Subgraphs a control-flow operator runs (IF, WHILE, CALL_ONCE, ...: every option naming one)."""
    return [int(value) for key, value in op.options.items() if key.lower().endswith("subgraphindex")]


def _check_subgraph_calls(graphs: list, path) -> None:
    """Control flow may only call existing subgraphs, and never back into one already running (TFLM would
    recurse until the stack overflows)."""
    calls: list[set[int]] = []
    for number, (_, operators, _, _) in enumerate(graphs):
        targets = set()
        for op in operators:
            for target in _called_subgraphs(op):
                if not 0 <= target < len(graphs):
                    raise _bad(path, f"operator {op.index} ({op.op}) of subgraph {number} calls subgraph {target} "
                                     f"of {len(graphs)}")
                targets.add(target)
        calls.append(targets)
    state = [0] * len(graphs)  # 0 unvisited, 1 on the current path, 2 done
    for start in range(len(graphs)):
        if state[start]:
            continue
        stack = [(start, iter(sorted(calls[start])))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state[child] == 1:
                cycle = [n for n, _ in stack][[n for n, _ in stack].index(child):] + [child]
                raise _bad(path, f"its subgraphs call each other in a cycle ({' -> '.join(map(str, cycle))})")
            elif state[child] == 0:
                state[child] = 1
                stack.append((child, iter(sorted(calls[child]))))


def _check_execution_order(operators: list[Operator], inputs, outputs, tensors: list[Tensor], path,
                           where: str = "") -> None:
    """Every operator input exists before the operator runs, every tensor is written once and never over a
    constant, and every graph output gets computed (no cycles, no dangling tensors)."""
    constants = {t.index for t in tensors if t.is_constant}
    available = set(inputs) | constants | {t.index for t in tensors if t.is_variable}
    written = set(inputs)
    ever_written = {i for op in operators for i in op.outputs}
    for op in operators:
        for i in op.inputs:
            if i == -1 or i in available:
                continue
            if op.op.startswith("CUSTOM:") and i not in ever_written:
                continue  # a custom op's working memory (Vela's scratch tensors): TFLM allocates it, no op writes it
            raise _bad(path, f"{where}operator {op.index} ({op.op}) reads tensor {i} before any operator writes it"
                       if i in ever_written else f"{where}operator {op.index} ({op.op}) reads tensor {i}, which no "
                       "operator writes and which is no graph input, constant or variable")
        for i in op.outputs:
            if i in constants:
                raise _bad(path, f"{where}operator {op.index} ({op.op}) writes over the constant tensor {i}")
            if i in written:
                raise _bad(path, f"{where}operator {op.index} ({op.op}) writes tensor {i}, which is already written")
            written.add(i)
        available.update(op.outputs)
    for i in outputs:
        if i not in available:
            raise _bad(path, f"{where}the graph output tensor {i} is never computed")
