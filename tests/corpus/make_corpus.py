"""The corpus of hostile inputs: every case built deterministically from one tiny hand-built int8 model.

`python tests/corpus/make_corpus.py` writes the cases to tests/corpus/cases/ (a few hundred bytes each) and
lists them in tests/corpus/README.md; tests/test_corpus.py feeds each one to the real CLI. Inputs found by
fuzzing (fuzz/fuzz_loader.py) land in tests/corpus/found/ and are replayed as well.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

CORPUS_DIR = Path(__file__).resolve().parent
CASES_DIR = CORPUS_DIR / "cases"
FOUND_DIR = CORPUS_DIR / "found"

# Strings that break C source, C comments, ini files or paths when pasted in unescaped.
HOSTILE_TEXT = 'evil"name */ /* ??/ \\ ../../etc \u00e9\u4e2d\n#include <x>'


# --------------------------------------------------------------------------------------------- valid models


def _tensor(name: str, shape, dtype: int, buffer: int, scale=None, zero_point=None) -> schema.TensorT:
    tensor = schema.TensorT()
    tensor.name = name.encode()
    tensor.shape = list(shape)
    tensor.type = dtype
    tensor.buffer = buffer
    if scale is not None:
        q = schema.QuantizationParametersT()
        q.scale = list(scale)
        q.zeroPoint = list(zero_point)
        tensor.quantization = q
    return tensor


def _buffer(data: bytes | None = None) -> schema.BufferT:
    buffer = schema.BufferT()
    buffer.data = list(data) if data else None
    return buffer


def tiny_model(input_dtype: int = schema.TensorType.INT8, names: tuple[str, str] = ("input", "output"),
               description: str = "tiny") -> schema.ModelT:
    """x[1,4] -> FULLY_CONNECTED (weights [2,4], bias [2]) -> y[1,2]: the smallest model every engine runs.

    int8 by default; INT16 gives a 16x8 model (int16 activations, int64 bias), FLOAT32 a float-only one."""
    int8, int16, f32 = schema.TensorType.INT8, schema.TensorType.INT16, schema.TensorType.FLOAT32
    weights = np.array([[1, -2, 3, -4], [5, 6, -7, 8]], dtype=np.int8)
    if input_dtype == f32:
        x = _tensor(names[0], [1, 4], f32, 0)
        w = _tensor("weights", [2, 4], f32, 1)
        b = _tensor("bias", [2], f32, 2)
        y = _tensor(names[1], [1, 2], f32, 0)
        data = [weights.astype(np.float32).tobytes(), np.array([0.5, -0.5], np.float32).tobytes()]
    else:
        act_scale = [0.05] if input_dtype == int8 else [0.001]
        bias_type, bias_dtype = (schema.TensorType.INT32, np.int32) if input_dtype == int8 else \
            (schema.TensorType.INT64, np.int64)
        x = _tensor(names[0], [1, 4], input_dtype, 0, act_scale, [0 if input_dtype == int16 else -3])
        w = _tensor("weights", [2, 4], int8, 1, [0.02], [0])
        b = _tensor("bias", [2], bias_type, 2, [act_scale[0] * 0.02], [0])
        y = _tensor(names[1], [1, 2], input_dtype, 0, [0.1 if input_dtype == int8 else 0.002],
                    [0 if input_dtype == int16 else 5])
        data = [weights.tobytes(), np.array([100, -100], bias_dtype).tobytes()]
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = [0, 1, 2], [3]
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    graph = schema.SubGraphT()
    graph.tensors = [x, w, b, y]
    graph.inputs, graph.outputs, graph.operators = [0], [3], [op]
    graph.name = b"main"
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    model = schema.ModelT()
    model.version = 3
    model.description = description.encode()
    model.operatorCodes = [code]
    model.subgraphs = [graph]
    model.buffers = [_buffer(), _buffer(data[0]), _buffer(data[1])]
    return model


def pack(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tiny_model_bytes() -> bytes:
    return pack(tiny_model())


def edited(change: Callable[[schema.ModelT], None], base: Callable[[], schema.ModelT] = tiny_model) -> bytes:
    model = base()
    change(model)
    return pack(model)


# --------------------------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    name: str  # file name in tests/corpus/cases/
    build: Callable[[], bytes]
    expect: str  # a fragment of the one-line error every command must print
    what: str  # one line for the README
    # commands allowed to accept the file (e.g. analyze reads float models); they still must not crash
    accepted_by: tuple[str, ...] = field(default=())

    @property
    def refused_by_reader(self) -> bool:
        """True when tinydeploy.model.tflite refuses it, whatever command reads it."""
        return not self.accepted_by and self.expect not in ("float", "int16")


def _set(path: str, value) -> Callable[[schema.ModelT], None]:
    def change(model):
        target = model
        *parts, last = path.split(".")
        for part in parts:
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        if last.isdigit():
            target[int(last)] = value
        else:
            setattr(target, last, value)
    return change


def _flip_bits(data: bytes, positions: list[int]) -> bytes:
    out = bytearray(data)
    for bit in positions:
        out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def _control_flow(op_name: str, options_type: int, options, extra_subgraphs: list[schema.SubGraphT]) -> bytes:
    """The tiny model with a control-flow op appended whose options name other subgraphs."""
    model = tiny_model()
    code = schema.OperatorCodeT()
    code.builtinCode = getattr(schema.BuiltinOperator, op_name)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    model.operatorCodes.append(code)
    op = schema.OperatorT()
    op.opcodeIndex = 1
    op.inputs, op.outputs = [], []
    op.builtinOptionsType = options_type
    op.builtinOptions = options
    model.subgraphs[0].operators.insert(0, op)
    model.subgraphs.extend(extra_subgraphs)
    return pack(model)


def _calling_subgraph(op_code_index: int, options_type: int, options) -> schema.SubGraphT:
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs = [], [], []
    op = schema.OperatorT()
    op.opcodeIndex = op_code_index
    op.inputs, op.outputs = [], []
    op.builtinOptionsType = options_type
    op.builtinOptions = options
    graph.operators = [op]
    return graph


def _call_once(index: int) -> schema.CallOnceOptionsT:
    options = schema.CallOnceOptionsT()
    options.initSubgraphIndex = index
    return options


def _while(cond: int, body: int) -> schema.WhileOptionsT:
    options = schema.WhileOptionsT()
    options.condSubgraphIndex, options.bodySubgraphIndex = cond, body
    return options


def _if(then: int, otherwise: int) -> schema.IfOptionsT:
    options = schema.IfOptionsT()
    options.thenSubgraphIndex, options.elseSubgraphIndex = then, otherwise
    return options


def _cycle_call_once() -> bytes:
    # subgraph 0 calls 1 once, 1 calls 0 back
    return _control_flow("CALL_ONCE", schema.BuiltinOptions.CallOnceOptions, _call_once(1),
                         [_calling_subgraph(1, schema.BuiltinOptions.CallOnceOptions, _call_once(0))])


def _cycle_while_if() -> bytes:
    # 0 WHILE(cond 1, body 2); 2 IF(then 1, else 0): 0 -> 2 -> 0
    return _control_flow("WHILE", schema.BuiltinOptions.WhileOptions, _while(1, 2), [
        _calling_subgraph(1, schema.BuiltinOptions.WhileOptions, _while(1, 1)),  # 1 calls itself
        _calling_subgraph(1, schema.BuiltinOptions.WhileOptions, _while(0, 0)),
    ])


def _self_call() -> bytes:
    return _control_flow("CALL_ONCE", schema.BuiltinOptions.CallOnceOptions, _call_once(0), [])


def _if_out_of_range() -> bytes:
    empty = schema.SubGraphT()
    empty.tensors, empty.inputs, empty.outputs, empty.operators = [], [], [], []
    return _control_flow("IF", schema.BuiltinOptions.IfOptions, _if(1, 7), [empty])


def _unknown_opcode(model):
    model.operatorCodes[0].builtinCode = 4000
    model.operatorCodes[0].deprecatedBuiltinCode = 127


def _no_buffers(model):
    model.buffers = []


def _weights_cut(model):
    model.buffers[1].data = model.buffers[1].data[:5]


def _buffer_outside_file(model):
    model.buffers[1].data = None
    model.buffers[1].offset = 1 << 40
    model.buffers[1].size = 8


def _nan_scale(model):
    model.subgraphs[0].tensors[0].quantization.scale = [float("nan")]


def _shared_names(model):
    """Names that the flatbuffer could share among tensors; here just one very long name (the reader caps work)."""
    for tensor in model.subgraphs[0].tensors:
        tensor.name = b"n" * 600


def _rank(model):
    model.subgraphs[0].tensors[0].shape = [1] * 40


def _reads_before_write(model):
    model.subgraphs[0].operators[0].inputs = [3, 1, 2]


INT8, INT16, FLOAT32 = schema.TensorType.INT8, schema.TensorType.INT16, schema.TensorType.FLOAT32
BAD_MODEL = "not a valid TFLite model"

CASES: list[Case] = [
    Case("zero_length.tflite", lambda: b"", BAD_MODEL, "an empty file"),
    Case("truncated_header.tflite", lambda: tiny_model_bytes()[:6], BAD_MODEL, "the first 6 bytes of a model"),
    Case("truncated_half.tflite", lambda: tiny_model_bytes()[: len(tiny_model_bytes()) // 2], BAD_MODEL,
         "the first half of a model"),
    Case("bit_flipped_root.tflite", lambda: _flip_bits(tiny_model_bytes(), [1, 2, 3, 4, 5, 6]), BAD_MODEL,
         "bits flipped in the root table offset"),
    Case("bit_flipped_body.tflite", lambda: _flip_bits(tiny_model_bytes(), [8 * 40 + 7, 8 * 41 + 7, 8 * 97]),
         BAD_MODEL, "bits flipped inside the tables"),
    Case("text.tflite", lambda: b"this is not a model\n" * 8, BAD_MODEL, "text with a .tflite suffix"),
    Case("wrong_identifier.tflite", lambda: tiny_model_bytes()[:4] + b"XXXX" + tiny_model_bytes()[8:], BAD_MODEL,
         "a model whose file identifier is not TFL3"),
    Case("op_input_out_of_range.tflite", lambda: edited(_set("subgraphs.0.operators.0.inputs", [0, 999, 2])),
         "tensor 999", "an operator input index past the tensor list"),
    Case("op_output_negative.tflite", lambda: edited(_set("subgraphs.0.operators.0.outputs", [-5])),
         "tensor -5", "a negative operator output index"),
    Case("graph_output_out_of_range.tflite", lambda: edited(_set("subgraphs.0.outputs", [1 << 30])),
         "tensor 1073741824", "a graph output index past the tensor list"),
    Case("absurd_shape.tflite", lambda: edited(_set("subgraphs.0.tensors.0.shape", [2, 2 ** 30])), "absurd shape",
         "an activation of 2^31 elements"),
    Case("absurd_shape_product.tflite",
         lambda: edited(_set("subgraphs.0.tensors.3.shape", [65536, 65536, 65536, 65536])), "absurd shape",
         "four dimensions of 2^16 (the product overflows 64 bits)"),
    Case("negative_dimension.tflite", lambda: edited(_set("subgraphs.0.tensors.0.shape", [1, -4])),
         "negative dimension", "a dimension of -4"),
    Case("huge_rank.tflite", lambda: edited(_rank), "rank", "a tensor of rank 40"),
    Case("missing_buffers.tflite", lambda: edited(_no_buffers), "buffer", "tensors refer to buffers that are absent"),
    Case("weights_cut.tflite", lambda: edited(_weights_cut), "bytes of data", "weights with 5 of their 8 bytes"),
    Case("buffer_outside_file.tflite", lambda: edited(_buffer_outside_file), "outside the file",
         "a buffer offset 1 TB past the end of the file"),
    Case("unknown_opcode.tflite", lambda: edited(_unknown_opcode), "unknown operator code 4000",
         "a builtin operator code the schema does not define"),
    Case("opcode_index_out_of_range.tflite", lambda: edited(_set("subgraphs.0.operators.0.opcodeIndex", 9)),
         "opcode 9", "an operator using an operator code index past the list"),
    Case("unknown_tensor_type.tflite", lambda: edited(_set("subgraphs.0.tensors.0.type", 99)), "unknown type 99",
         "a tensor type the schema does not define"),
    Case("nan_scale.tflite", lambda: edited(_nan_scale), "scale", "a quantization scale of NaN"),
    Case("reads_before_write.tflite", lambda: edited(_reads_before_write), "before any operator writes it",
         "an operator reading its own output (a cycle inside the graph)"),
    Case("no_subgraph.tflite", lambda: edited(_set("subgraphs", [])), "no subgraph", "a model without subgraphs"),
    Case("cycle_call_once.tflite", _cycle_call_once, "cycle", "CALL_ONCE in subgraph 0 calls 1, which calls 0"),
    Case("cycle_while_if.tflite", _cycle_while_if, "cycle", "WHILE bodies that call each other and themselves"),
    Case("self_call.tflite", _self_call, "cycle", "CALL_ONCE calling its own subgraph"),
    Case("subgraph_out_of_range.tflite", _if_out_of_range, "subgraph 7", "IF naming a subgraph that does not exist"),
    Case("float_only.tflite", lambda: pack(tiny_model(FLOAT32)), "float", "a float32 model (no quantization)",
         accepted_by=("analyze",)),
    Case("int16.tflite", lambda: pack(tiny_model(INT16)), "int16",
         "a 16x8 model (int16 activations): both engines run it, convert passes it through",
         accepted_by=("analyze", "convert", "generate-native", "generate-tflm")),
    Case("long_names.tflite", lambda: edited(_shared_names), "", "600-byte tensor names (valid, generates)",
         accepted_by=("analyze", "convert", "generate-native", "generate-tflm")),
]

# Models whose names are hostile to C, comments, ini files and paths; valid, so generating must succeed and
# the text may reach the project only escaped.
HOSTILE_NAMES = Case(
    "hostile_names.tflite",
    lambda: pack(tiny_model(names=(HOSTILE_TEXT, "out*/x"), description=HOSTILE_TEXT)),
    "", "tensor names and description with quotes, comment ends, trigraphs, ../ and non-ASCII",
    accepted_by=("analyze", "convert", "generate-native", "generate-tflm"))


def _zip(members: dict[str, bytes | str]) -> bytes:
    """A zip archive with fixed timestamps, so the bytes do not depend on the day it was made."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), content)
    return out.getvalue()


def keras_cases() -> dict[str, bytes]:
    """Files that claim to be Keras models and are not."""
    return {
        "garbage.keras": b"\x00\x01not a zip at all" * 4,
        "no_config.keras": _zip({"weights.h5": b"\x00" * 16}),
        "bad_config.keras": _zip({"config.json": '{"class_name": "Nothing", "config": {"layers": "no"}}',
                                  "metadata.json": "{}"}),
        "garbage.h5": b"not hdf5 either\n" * 4,
    }


def all_cases() -> dict[str, bytes]:
    files = {case.name: case.build() for case in [*CASES, HOSTILE_NAMES]}
    files.update(keras_cases())
    return files


def write_corpus(directory: Path = CASES_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in sorted(all_cases().items()):
        path = directory / name
        path.write_bytes(data)
        written.append(path)
    return written


def readme() -> str:
    lines = ["# Hostile inputs", "",
             "Every command that reads a model must refuse these with one `error:` line and exit code 2 (no",
             "traceback, no hang); `hostile_names.tflite` is valid and must generate C that holds its names only",
             "escaped. Regenerate with `python tests/corpus/make_corpus.py`; tests/test_corpus.py runs them all.",
             "`found/` keeps inputs that once broke the loader (written by fuzz/fuzz_loader.py).", ""]
    for case in [*CASES, HOSTILE_NAMES]:
        lines.append(f"- `cases/{case.name}`: {case.what}")
    lines += ["- `cases/garbage.keras`: bytes that are not a zip, with a .keras suffix",
              "- `cases/no_config.keras`: a zip without config.json",
              "- `cases/bad_config.keras`: a zip whose config.json describes no model (needs TensorFlow to refuse)",
              "- `cases/garbage.h5`: bytes that are not HDF5, with a .h5 suffix",
              "- generated in tests/test_corpus.py: an HDF5 file with no model config, calibration data with NaN,",
              "  Inf, strings, no samples or the wrong shape, a file whose name holds quotes and non-ASCII", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CASES_DIR)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed cases are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = [name for name, data in all_cases().items()
                 if not (args.out / name).is_file() or (args.out / name).read_bytes() != data]
        print(json.dumps({"stale": stale}))
        return 1 if stale else 0
    for path in write_corpus(args.out):
        print(f"{path.stat().st_size:6d} B  {path}")
    if args.out == CASES_DIR:
        (CORPUS_DIR / "README.md").write_text(readme())
    return 0


if __name__ == "__main__":
    sys.exit(main())
