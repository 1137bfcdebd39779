"""The per-op lowering registry: one entry per TFLite op turns it into one kernel call (or a view).

A lowering reads the op's tensors and options, precomputes every quantization constant in Python and returns
a `Lowered`: the C kernel function, its arguments (tensor addresses that the planner resolves later, constant
arrays, a parameter struct) and the scratch memory it needs. Adding an op: one module in
tinydeploy/engine/ops/ with a @lowering entry, one C file (+ header) in firmware/engine/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import Operator, Tensor, TfliteModel

STACK_SCRATCH_MAX = 2560  # TD_STACK_SCRATCH_MAX (td_dot.h): scratch bytes a fast kernel may take on its stack
C_TYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t", "uint8": "uint8_t",
           "float32": "float"}


@dataclass(frozen=True)
class TensorRef:
    """The address of an activation tensor inside the planned buffer."""

    tensor: int
    ctype: str = "int8_t"


@dataclass(frozen=True)
class ScratchRef:
    """The address of this op's scratch memory inside the planned buffer. optional: the kernel takes the memory
    on its own stack when the call passes NULL (the generator places it in the buffer only where that is free)."""

    ctype: str = "int32_t"
    optional: bool = False


@dataclass(frozen=True)
class RefList:
    """A C array of pointers built at the call (a compound literal): tensor addresses and/or constant arrays."""

    items: tuple  # TensorRef | str (a constant array's name)
    ctype: str = "int8_t"


@dataclass
class Lowered:
    op_index: int
    op_name: str
    function: str | None  # None: a pure view, no code runs
    args: tuple = ()  # TensorRef | ScratchRef | str (a C expression)
    kernel: str | None = None  # op family: firmware/engine/<kernel>.c and .h
    scratch_bytes: int = 0
    view_of: int | None = None  # the input tensor a view's output aliases
    in_place_of: int | None = None  # an input the kernel may overwrite with its output (if it dies here)
    streams_over: tuple[int, int] | None = None  # (input, max offset): output may overlap that input, see planner
    variant: str = "reference"  # which implementation the generator chose, shown by analyze --engine native
    scratch_request: int = 0  # bytes of optional scratch (ScratchRef(optional=True)): planned where free


@dataclass
class ConstArray:
    name: str
    ctype: str
    values: np.ndarray
    comment: str


@dataclass
class ParamStruct:
    name: str
    ctype: str
    fields: list[tuple[str, str]]
    comment: str


@dataclass
class Lowering:
    op_name: str
    kernel: str | None
    function: Callable[["LoweringContext"], Lowered]


_LOWERINGS: dict[str, Lowering] = {}


def lowering(op_name: str, kernel: str | None = None):
    """Register the lowering of one TFLite builtin op; `kernel` names its C file family."""

    def register(function: Callable[["LoweringContext"], Lowered]):
        _LOWERINGS[op_name] = Lowering(op_name, kernel, function)
        return function

    return register


def supported_ops() -> list[str]:
    _load_ops()
    return sorted(_LOWERINGS)


def _load_ops() -> None:
    import tinydeploy.engine.ops  # noqa: F401  (registers every lowering)


class Constants:
    """Flash data shared by all ops of a model: arrays (deduplicated per tensor) and parameter structs."""

    def __init__(self) -> None:
        self.arrays: list[ConstArray] = []
        self.structs: list[ParamStruct] = []
        self._by_tensor: dict[tuple[int, str], str] = {}
        self._shared: dict[tuple, str] = {}

    def array(self, label: str, ctype: str, values: Iterable, comment: str = "") -> str:
        values = np.asarray(list(values) if not isinstance(values, np.ndarray) else values).reshape(-1)
        if values.size == 0:
            raise ValueError(f"constant {label} is empty")
        name = f"td_{label}"
        self.arrays.append(ConstArray(name, ctype, values, comment))
        return name

    def tensor(self, tensor: Tensor, ctype: str) -> str:
        key = (tensor.index, ctype)
        if key not in self._by_tensor:
            self._by_tensor[key] = self.array(f"t{tensor.index}", ctype, tensor.values(), f"tensor {tensor.index}: "
                                              f"{tensor.name} {list(tensor.shape)}")
        return self._by_tensor[key]

    def shared(self, key: tuple, ctype: str, values: Iterable, comment: str = "") -> str:
        """One array for every op that asks with the same key (e.g. a row of zero points)."""
        if key not in self._shared:
            self._shared[key] = self.array(f"shared{len(self._shared)}", ctype, values, comment)
        return self._shared[key]

    def struct(self, label: str, ctype: str, fields: list[tuple[str, object]], comment: str = "") -> str:
        name = f"td_{label}"
        self.structs.append(ParamStruct(name, ctype, [(k, _c_value(v)) for k, v in fields], comment))
        return f"&{name}"

    @property
    def flash_bytes(self) -> int:
        """Constant arrays plus parameter structs (every struct member is 4 bytes on a 32-bit target)."""
        arrays = sum(int(a.values.size) * _CTYPE_BYTES[a.ctype] for a in self.arrays)
        return arrays + sum(4 * _scalar_count(value) for struct in self.structs for _, value in struct.fields)


_CTYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "uint32_t": 4, "int64_t": 8, "float": 4}


def _scalar_count(c_initializer: str) -> int:
    """Scalars in a C initializer ("{ .a = 1, .b = { 2, 3 } }" has 3)."""
    depth, count, has_value = 0, 0, False
    for ch in c_initializer:
        if ch == "{":
            depth += 1
        elif ch in ",}":
            count += has_value
            has_value = False
        elif not ch.isspace():
            has_value = True
    return max(count + has_value, 1)


def c_float(value: float) -> str:
    """An exact C float literal (hexadecimal) of a value that is a float32."""
    if float(np.float32(value)) != value:
        raise ValueError(f"{value!r} is not a float32 value")
    return f"{value.hex()}f"


def c_struct(fields: list[tuple[str, object]]) -> str:
    """A designated initializer for a nested struct field."""
    return "{ " + ", ".join(f".{name} = {_c_value(value)}" for name, value in fields) + " }"


def _c_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "{ " + ", ".join(_c_value(v) for v in value) + " }"
    if isinstance(value, (float, np.floating)):
        return c_float(float(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        value = int(value)
        return "INT32_MIN" if value == -(1 << 31) else str(value)
    return str(value)


class LoweringContext:
    """What a lowering sees: its op, the model, the model's constants, and helpers that refuse bad input."""

    def __init__(self, model: TfliteModel, op: Operator, constants: Constants, fast_kernels: bool = True,
                 scratch_limit: int | None = None):
        self.model = model
        self.op = op
        self.constants = constants
        # False: every op gets its reference kernel (the oracle); True: a lowering may pick a faster variant.
        self.fast_kernels = fast_kernels
        # Bytes of optional scratch this op may ask for: free space of the plan at this op, or what a kernel may
        # take on its own stack.
        self.scratch_limit = STACK_SCRATCH_MAX if scratch_limit is None else max(scratch_limit, STACK_SCRATCH_MAX)
        # Set by window(): (input tensor, how far after its start the output may begin) for streaming kernels.
        self.streams_over: tuple[int, int] | None = None

    def fail(self, reason: str) -> TinydeployError:
        return TinydeployError(f"the native engine cannot run operator {self.op.index} ({self.op.op}): {reason}",
                               "run this model with the TFLM engine")

    def input(self, position: int, dtypes: tuple[str, ...] = ("int8",), constant: bool | None = None) -> Tensor:
        tensor = self.optional_input(position, dtypes, constant)
        if tensor is None:
            raise self.fail(f"input {position} is missing")
        return tensor

    def optional_input(self, position: int, dtypes: tuple[str, ...] = ("int8",),
                       constant: bool | None = None) -> Tensor | None:
        if position >= len(self.op.inputs) or self.op.inputs[position] == -1:
            return None
        return self._check(self.model.tensors[self.op.inputs[position]], f"input {position}", dtypes, constant)

    def output(self, position: int, dtypes: tuple[str, ...] = ("int8",)) -> Tensor:
        if position >= len(self.op.outputs):
            raise self.fail(f"output {position} is missing")
        return self._check(self.model.tensors[self.op.outputs[position]], f"output {position}", dtypes, False)

    def _check(self, tensor: Tensor, what: str, dtypes: tuple[str, ...], constant: bool | None) -> Tensor:
        if tensor.dtype not in dtypes:
            raise self.fail(f"{what} ({tensor.name}) is {tensor.dtype}, expected {' or '.join(dtypes)}")
        if constant is True and not tensor.is_constant:
            raise self.fail(f"{what} ({tensor.name}) must be constant")
        if constant is False and tensor.is_constant:
            raise self.fail(f"{what} ({tensor.name}) is constant; only computed tensors are supported there")
        return tensor

    def scale(self, tensor: Tensor) -> float:
        """The single (per-tensor) scale of an activation tensor."""
        if tensor.quant is None or len(tensor.quant.scales) != 1:
            raise self.fail(f"tensor {tensor.name} has no per-tensor quantization")
        return tensor.quant.scales[0]

    def zero_point(self, tensor: Tensor) -> int:
        if tensor.quant is None or not tensor.quant.zero_points:
            return 0
        return tensor.quant.zero_points[0]

    def ref(self, tensor: Tensor) -> TensorRef:
        return TensorRef(tensor.index, C_TYPES[tensor.dtype])

    def lowered(self, function: str | None, args: tuple = (), scratch_bytes: int = 0,
                view_of: int | None = None, in_place_of: int | None = None, kernel: str | None = None,
                variant: str = "reference", scratch_request: int = 0) -> Lowered:
        """`kernel` overrides the op family's C file (a fast variant lives in its own file); `variant` names the
        implementation for the plan display; `scratch_request` the bytes an optional ScratchRef stands for."""
        entry = _LOWERINGS[self.op.op]
        return Lowered(self.op.index, self.op.op, function, args, kernel or entry.kernel, scratch_bytes, view_of,
                       in_place_of, self.streams_over, variant, scratch_request)

    def same_quantization(self, a: Tensor, b: Tensor) -> bool:
        return self.scale(a) == self.scale(b) and self.zero_point(a) == self.zero_point(b)

    def constant_ints(self, position: int) -> list[int]:
        """The values of a constant integer input (axes, paddings)."""
        tensor = self.input(position, ("int32", "int64"), constant=True)
        return [int(v) for v in tensor.values().reshape(-1)]


@dataclass
class LoweredModel:
    ops: list[Lowered]
    constants: Constants
    kernels: list[str] = field(default_factory=list)  # op families used, in first-use order
    model: TfliteModel | None = None  # the model lowered (after pruning: tinydeploy.engine.prune)
    pruning: object | None = None  # tinydeploy.engine.prune.Pruning, when the graph was optimized


def check_supported(model: TfliteModel) -> None:
    """Refuse a model the engine cannot run before any work, naming every missing op."""
    _load_ops()
    missing = [name for name in model.distinct_ops if name not in _LOWERINGS]
    if missing:
        raise TinydeployError(
            f"the native engine does not support the operator{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (supported: {', '.join(supported_ops())})",
            "run this model with the TFLM engine")
    if model.subgraph_count != 1:
        raise TinydeployError(f"the native engine runs single-subgraph models; this one has {model.subgraph_count}",
                              "run this model with the TFLM engine")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TinydeployError(
            f"the native engine runs models with one input and one output; this one has {len(model.inputs)} "
            f"input(s) and {len(model.outputs)} output(s)", "run this model with the TFLM engine")


def lower_model(model: TfliteModel, fast_kernels: bool = True,
                scratch_limits: dict[int, int] | None = None) -> LoweredModel:
    """scratch_limits: op index -> bytes of optional scratch free for it in the plan (default: none)."""
    check_supported(model)
    constants = Constants()
    ops: list[Lowered] = []
    kernels: list[str] = []
    for op in model.operators:
        limit = (scratch_limits or {}).get(op.index)
        lowered = _LOWERINGS[op.op].function(LoweringContext(model, op, constants, fast_kernels, limit))
        ops.append(lowered)
        if lowered.kernel and lowered.kernel not in kernels:
            kernels.append(lowered.kernel)
    return LoweredModel(ops, constants, kernels, model)
