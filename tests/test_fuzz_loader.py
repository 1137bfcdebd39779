"""Hypothesis fuzzes the TFLite loader (and the pure-Python analysis behind `tinydeploy analyze`) for a few
seconds: for any bytes it returns a model or raises TinydeployError, nothing else, and never hangs.
fuzz/fuzz_loader.py runs the same property for minutes and keeps what it finds in tests/corpus/found/."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fuzz.fuzz_loader import failure_of, seed_inputs  # noqa: E402
from tests.corpus.make_corpus import FOUND_DIR, pack, tiny_model, tiny_model_bytes  # noqa: E402

SEEDS = seed_inputs()
# bounded: ~5-10 s per strategy on a loaded 2-core machine; a slow example is a hang
FUZZ = settings(max_examples=1500, deadline=2000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_loader_holds(data: bytes) -> None:
    failure = failure_of(data)
    assert failure is None, failure


@st.composite
def mutated_models(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)) or tiny_model_bytes())
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "truncate", "bytes", "offset32", "offset16", "insert"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "bytes":
            data[at:at + 4] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "offset32":  # table, vector and string offsets, lengths and vtable positions
            value = draw(st.one_of(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-64, 64),
                                   st.integers(0, len(data))))
            at &= ~3
            data[at:at + 4] = struct.pack("<i", value)
        elif kind == "offset16":  # vtable entries
            at &= ~1
            data[at:at + 2] = struct.pack("<H", draw(st.integers(0, 0xFFFF)))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    if len(data) >= 8 and draw(st.booleans()):
        data[4:8] = b"TFL3"
    return bytes(data)


@FUZZ
@given(mutated_models())
def test_mutated_models_load_or_are_refused(data):
    assert_loader_holds(data)


@FUZZ
@given(st.binary(max_size=2048).map(lambda tail: tail[:4] + b"TFL3" + tail[4:]))
def test_random_bytes_behind_the_identifier_are_refused(data):
    assert_loader_holds(data)


INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
SMALL_INDEX = st.integers(-3, 8)


@st.composite
def edited_models(draw) -> bytes:
    """Well-formed flatbuffers with hostile field values: shapes, indices, types, codes, quantization."""
    model = tiny_model(draw(st.sampled_from([schema.TensorType.INT8, schema.TensorType.INT16,
                                             schema.TensorType.FLOAT32])))
    graph = model.subgraphs[0]
    for _ in range(draw(st.integers(1, 4))):
        tensor = graph.tensors[draw(st.integers(0, len(graph.tensors) - 1))]
        field = draw(st.sampled_from(["shape", "type", "buffer", "scale", "zero_point", "axis", "index", "opcode",
                                      "builtin", "graph_io", "buffers"]))
        if field == "shape":
            tensor.shape = draw(st.lists(st.one_of(INT32, st.integers(0, 70000)), max_size=10))
        elif field == "type":
            tensor.type = draw(st.integers(-128, 127))
        elif field == "buffer":
            tensor.buffer = draw(st.integers(0, 6))
        elif field == "scale" and tensor.quantization is not None:
            tensor.quantization.scale = draw(st.lists(st.floats(width=32), max_size=4))
        elif field == "zero_point" and tensor.quantization is not None:
            tensor.quantization.zeroPoint = draw(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=4))
        elif field == "axis" and tensor.quantization is not None:
            tensor.quantization.quantizedDimension = draw(INT32)
        elif field == "index":
            graph.operators[0].inputs = draw(st.lists(SMALL_INDEX, max_size=4))
            graph.operators[0].outputs = draw(st.lists(SMALL_INDEX, max_size=2))
        elif field == "opcode":
            graph.operators[0].opcodeIndex = draw(st.integers(0, 3))
        elif field == "builtin":
            code = model.operatorCodes[0]
            code.builtinCode = draw(st.one_of(st.integers(0, 210), INT32))
            code.deprecatedBuiltinCode = draw(st.integers(-128, 127))
        elif field == "graph_io":
            graph.inputs = draw(st.lists(SMALL_INDEX, max_size=3))
            graph.outputs = draw(st.lists(SMALL_INDEX, max_size=3))
        elif field == "buffers":
            model.buffers = model.buffers[: draw(st.integers(0, len(model.buffers)))]
    return pack(model)


@FUZZ
@given(edited_models())
def test_models_with_hostile_field_values_load_or_are_refused(data):
    assert_loader_holds(data)


@pytest.mark.parametrize("path", sorted(FOUND_DIR.glob("*.tflite")), ids=lambda p: p.name)
def test_inputs_that_once_broke_the_loader_are_refused(path):
    assert_loader_holds(path.read_bytes())


def test_an_absurd_shape_is_refused_before_anything_is_allocated():
    """2^30 x 2^30 elements of float32 would be 4 EB; the reader must refuse it from the shape alone."""
    model = tiny_model()
    model.subgraphs[0].tensors[3].shape = [1 << 30, 1 << 30]
    failure = failure_of(pack(model))
    assert failure is None
    from tinydeploy.errors import TinydeployError
    from tinydeploy.model.tflite import parse_tflite

    with pytest.raises(TinydeployError, match="absurd shape"):
        parse_tflite(pack(model))


def test_shared_strings_cannot_blow_up_the_reader():
    """Flatbuffers let every tensor point at one long name; the reader stops before it copies gigabytes."""
    import flatbuffers

    from tinydeploy.errors import TinydeployError
    from tinydeploy.model.tflite import parse_tflite

    builder = flatbuffers.Builder(0)
    name = builder.CreateString("n" * 20000)
    tensors = []
    for _ in range(3000):
        schema.TensorStart(builder)
        schema.TensorAddName(builder, name)
        tensors.append(schema.TensorEnd(builder))
    schema.SubGraphStartTensorsVector(builder, len(tensors))
    for offset in reversed(tensors):
        builder.PrependUOffsetTRelative(offset)
    vector = builder.EndVector()
    schema.SubGraphStart(builder)
    schema.SubGraphAddTensors(builder, vector)
    graph = schema.SubGraphEnd(builder)
    schema.ModelStartSubgraphsVector(builder, 1)
    builder.PrependUOffsetTRelative(graph)
    graphs = builder.EndVector()
    schema.ModelStart(builder)
    schema.ModelAddSubgraphs(builder, graphs)
    builder.Finish(schema.ModelEnd(builder), file_identifier=b"TFL3")
    data = bytes(builder.Output())
    assert len(data) < 100_000  # 60 MB of names once unpacked
    with pytest.raises(TinydeployError, match="share data"):
        parse_tflite(data)
