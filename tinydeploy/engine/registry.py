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
    writable: bool = False  # pointers to outputs the kernel writes (const data otherwise)


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


Signature = tuple[str, str]  # (dtype of the op's first computed input, dtype of its first output)


def same(*dtypes: str) -> frozenset[Signature]:
    """Signatures of ops whose input and output share one of `dtypes`."""
    return frozenset((dtype, dtype) for dtype in dtypes)


INT8 = same("int8")


@dataclass
class Lowering:
    op_name: str
    kernel: str | None
    function: Callable[["LoweringContext"], Lowered]
    dtypes: frozenset[Signature] = INT8  # the tensor types the lowering runs, checked before any lowering


_LOWERINGS: dict[str, Lowering] = {}


def lowering(op_name: str, kernel: str | None = None, dtypes: frozenset[Signature] = INT8):
    """Register the lowering of one TFLite builtin op; `kernel` names its C file family, `dtypes` the signatures
    (first computed input's dtype, first output's dtype) it supports."""

    def register(function: Callable[["LoweringContext"], Lowered]):
        _LOWERINGS[op_name] = Lowering(op_name, kernel, function, frozenset(dtypes))
        return function

    return register


def op_signature(model: TfliteModel, op: Operator) -> Signature:
    """The op's (first computed input's dtype, first output's dtype): what a lowering's `dtypes` declares."""
    present = [model.tensors[i] for i in op.inputs if i != -1]
    computed = [t for t in present if not t.is_constant] or present
    source = computed[0].dtype if computed else "none"
    result = model.tensors[op.outputs[0]].dtype if op.outputs else "none"
    return source, result


def supported_ops() -> list[str]:
    _load_ops()
    return sorted(_LOWERINGS)


def _load_ops() -> None:
    import tinydeploy.engine.ops  # noqa: F401  (registers every lowering)


class Constants:
    """Flash data shared by all ops of a model: arrays and parameter structs. An array whose type and values equal
    one already there is not stored twice (weights shared between ops, equal quantization tables)."""

    def __init__(self) -> None:
        self.arrays: list[ConstArray] = []
        self.structs: list[ParamStruct] = []
        self._by_tensor: dict[tuple[int, str], str] = {}
        self._by_content: dict[tuple[str, str, bytes], str] = {}

    def array(self, label: str, ctype: str, values: Iterable, comment: str = "") -> str:
        values = np.asarray(list(values) if not isinstance(values, np.ndarray) else values).reshape(-1)
        if values.size == 0:
            raise ValueError(f"constant {label} is empty")
        canonical = values.astype(np.float64 if values.dtype.kind == "f" else np.int64)
        key = (ctype, canonical.dtype.kind, canonical.tobytes())
        if key in self._by_content:
            return self._by_content[key]
        name = f"td_{label}"
        self.arrays.append(ConstArray(name, ctype, values, comment))
        self._by_content[key] = name
        return name

    def tensor(self, tensor: Tensor, ctype: str) -> str:
        key = (tensor.index, ctype)
        if key not in self._by_tensor:
            self._by_tensor[key] = self.array(f"t{tensor.index}", ctype, tensor.values(), f"tensor {tensor.index}: "
                                              f"{tensor.name} {list(tensor.shape)}")
        return self._by_tensor[key]

    def raw_bytes(self, tensor: Tensor) -> str:
        """A constant tensor's bytes as an int8_t array (for kernels that copy bytes of any element type)."""
        return self.array(f"t{tensor.index}_bytes", "int8_t", tensor.values().reshape(-1).view(np.int8),
                          f"tensor {tensor.index}: {tensor.name} {list(tensor.shape)} {tensor.dtype}, as bytes")

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
        # the engine's check (tinydeploy.engines.support) adds every other reason and what works instead
        return TinydeployError(f"the native engine cannot run operator {self.op.index} ({self.op.op}): {reason}",
                               "see tinydeploy analyze MODEL --engine native for every reason")

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
        what = f"{what} ({tensor.name})" if tensor.name else what
        if tensor.dtype not in dtypes:
            raise self.fail(f"{what} is {tensor.dtype}, expected {' or '.join(dtypes)}")
        if constant is True and not tensor.is_constant:
            raise self.fail(f"{what} must be constant")
        if constant is False and tensor.is_constant:
            raise self.fail(f"{what} is constant; only computed tensors are supported there")
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

    def ref(self, tensor: Tensor, ctype: str | None = None) -> TensorRef:
        return TensorRef(tensor.index, ctype or C_TYPES[tensor.dtype])

    @property
    def signature(self) -> Signature:
        """(first computed input's dtype, first output's dtype), as the lowering's `dtypes` declares them."""
        return op_signature(self.model, self.op)

    def operand(self, tensor: Tensor) -> str | TensorRef:
        """An input that may be constant (flash array of its own type) or computed (its address)."""
        return self.constants.tensor(tensor, C_TYPES[tensor.dtype]) if tensor.is_constant else self.ref(tensor)

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


def _signature_text(signature: Signature) -> str:
    source, result = signature
    return source if source == result else f"{source} -> {result}"


def unsupported_ops(model: TfliteModel) -> list[str]:
    """The model's ops the engine cannot run: the name of an op it lacks, or the op with the tensor types it lacks
    them for ("CONV_2D on float32"), each once, in name order."""
    _load_ops()
    found = set()
    for op in model.operators:
        entry = _LOWERINGS.get(op.op)
        if entry is None:
            found.add(op.op)
        elif (signature := op_signature(model, op)) not in entry.dtypes:
            found.add(f"{op.op} on {_signature_text(signature)}")
    return sorted(found)


def supported_dtypes(op_name: str) -> list[str]:
    """The tensor types an op runs on, as text ("int8", "int16 -> int8")."""
    _load_ops()
    entry = _LOWERINGS.get(op_name)
    return sorted(_signature_text(s) for s in entry.dtypes) if entry else []


def native_problems(model: TfliteModel) -> list[str]:
    """Why the native engine cannot run a model ([] when it can): the graph's shape, every op without a
    lowering or without one for its tensor types, and every op whose lowering refuses it (options,
    quantization). Each lowering is tried, so what the lowerings accept is the one definition of what the
    engine supports."""
    _load_ops()
    problems = []
    if model.subgraph_count != 1:
        problems.append(f"it runs single-subgraph models; this one has {model.subgraph_count}")
    if not model.inputs or not model.outputs:
        problems.append(f"it needs at least one input and one output; this one has {len(model.inputs)} and "
                        f"{len(model.outputs)}")
    missing = [name for name in model.distinct_ops if name not in _LOWERINGS]
    if missing:
        problems.append(f"it has no kernel for {', '.join(missing)} (it has {', '.join(supported_ops())})")
    typed = [name for name in unsupported_ops(model) if " on " in name]
    if typed:
        runs = "; ".join(f"{name.split(' on ')[0]} runs {', '.join(supported_dtypes(name.split(' on ')[0]))}"
                         for name in typed)
        problems.append(f"it has no kernel for {', '.join(typed)} ({runs})")
    constants = Constants()
    for op in model.operators:
        entry = _LOWERINGS.get(op.op)
        if entry is None or op_signature(model, op) not in entry.dtypes:
            continue
        try:
            entry.function(LoweringContext(model, op, constants, fast_kernels=False))
        except TinydeployError as refusal:
            problems.append(refusal.message.removeprefix("the native engine cannot run "))
    return problems


def refuse_unsupported(model: TfliteModel) -> None:
    """Raise unless the engine runs the model (the engine's check in tinydeploy.engines says this with what works
    instead; this is the floor)."""
    problems = native_problems(model)
    if problems:
        raise TinydeployError(f"the native engine cannot run {model.name}: {'; '.join(problems[:3])}",
                              "see tinydeploy analyze MODEL --engine native for every reason")


def lower_model(model: TfliteModel, fast_kernels: bool = True, scratch_limits: dict[int, int] | None = None,
                checked: bool = False, reference_ops: frozenset[int] = frozenset()) -> LoweredModel:
    """scratch_limits: op index -> bytes of optional scratch free for it in the plan (default: none); checked: the
    caller has run refuse_unsupported on this model (or one that differs only in constants and channel counts);
    reference_ops: ops that get their reference kernel although fast_kernels (the fit-aware choice)."""
    if not checked:
        refuse_unsupported(model)
    constants = Constants()
    ops: list[Lowered] = []
    kernels: list[str] = []
    for op in model.operators:
        limit = (scratch_limits or {}).get(op.index)
        fast = fast_kernels and op.index not in reference_ops
        lowered = _LOWERINGS[op.op].function(LoweringContext(model, op, constants, fast, limit))
        ops.append(lowered)
        if lowered.kernel and lowered.kernel not in kernels:
            kernels.append(lowered.kernel)
    return LoweredModel(ops, constants, kernels, model)
