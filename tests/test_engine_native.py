"""The native engine on real models: bit-exact with TFLM on the host, planned memory, refusals, Cortex-M4 build."""

from __future__ import annotations

import ctypes
import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import mlperf_model
from engine_models import assert_engine_matches_tflm
from tinydeploy.engine import describe_plan, emit_native_sources, supported_ops
from tinydeploy.engine.host import HostEngine
from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel, load_tflite
from tinydeploy.paths import firmware_dir

CORTEX_M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2", "-Wall", "-Wextra",
                   "-Werror"]
AD_LOWER_BOUND = 768  # input 640 B + first hidden layer 128 B live together


@pytest.fixture(scope="module")
def ad_model() -> TfliteModel:
    return load_tflite(mlperf_model("ad"))


@pytest.fixture(scope="module")
def ad_engine(ad_model, tmp_path_factory) -> HostEngine:
    return HostEngine.build(ad_model, tmp_path_factory.mktemp("ad_native"))


def test_ad_autoencoder_matches_tflm_byte_for_byte(ad_model, ad_engine):
    assert ad_engine.name == "native"
    assert_engine_matches_tflm(ad_engine, ad_model.raw, (1, 640), count=20, seed=1234, label="AD")


def test_ad_plan_reaches_the_liveness_lower_bound(ad_model, ad_engine):
    plan = ad_engine.plan
    assert plan.lower_bound_bytes == AD_LOWER_BOUND
    assert plan.activation_bytes == AD_LOWER_BOUND == ad_engine.activation_bytes
    assert plan.peak_op == 0
    for op in ad_model.operators:  # an op never writes over an input it is still reading
        source, result = op.inputs[0], op.outputs[0]
        a, b = plan.offsets[source], plan.offsets[result]
        assert a + ad_model.tensors[source].nbytes <= b or b + ad_model.tensors[result].nbytes <= a
    assert plan.flash_bytes >= sum(t.nbytes for t in ad_model.tensors if t.is_constant)
    assert {p.name for p in plan.kernel_sources} >= {"fully_connected_fast.c", "fully_connected_fast.h", "td_dot.h",
                                                     "td_quant.h"}
    assert all(p.is_file() for p in plan.kernel_sources)


def test_host_engine_refuses_an_input_of_the_wrong_size(ad_engine):
    with pytest.raises(TinydeployError, match="640"):
        ad_engine.run(b"\0" * 10)


def test_unsupported_op_is_refused_naming_it_and_the_supported_ops(ad_model, tmp_path):
    operators = list(ad_model.operators)
    operators[3] = dataclasses.replace(operators[3], op="CUSTOM:MyFancyOp")
    model = dataclasses.replace(ad_model, operators=operators)
    with pytest.raises(TinydeployError) as caught:
        emit_native_sources(model, tmp_path / "out")
    message = caught.value.one_line()
    assert "CUSTOM:MyFancyOp" in message
    assert "FULLY_CONNECTED" in message and "RESHAPE" in message
    assert not (tmp_path / "out").exists()  # refused before writing anything
    assert "FULLY_CONNECTED" in supported_ops()


def test_every_missing_op_is_named(tmp_path):
    model = load_tflite(mlperf_model("kws"))
    operators = list(model.operators)
    operators[1] = dataclasses.replace(operators[1], op="SQUARED_DIFFERENCE")
    operators[2] = dataclasses.replace(operators[2], op="CUSTOM:Other")
    with pytest.raises(TinydeployError) as caught:
        emit_native_sources(dataclasses.replace(model, operators=operators), tmp_path)
    assert "SQUARED_DIFFERENCE" in caught.value.message and "CUSTOM:Other" in caught.value.message


def test_every_mlperf_tiny_op_is_supported():
    for key in ("ad", "kws", "ic", "vww"):
        assert set(load_tflite(mlperf_model(key)).distinct_ops) <= set(supported_ops())


def _hostile_copy(model: TfliteModel, tmp_path: Path) -> tuple[TfliteModel, str]:
    """The AD model under a name and tensor names meant to break generated C."""
    name = 'evil * "quote" \\ \n newline ?? trigraph é'  # a file name cannot hold "/"; tensor names do
    tensors = [dataclasses.replace(t, name=f"*/ {t.name} \"\\\n\u00fc /*") for t in model.tensors]
    return dataclasses.replace(model, tensors=tensors, path=tmp_path / f"{name}.tflite"), name


def test_hostile_names_cannot_break_the_generated_c(ad_model, tmp_path):
    model, name = _hostile_copy(ad_model, tmp_path)
    engine = HostEngine.build(model, tmp_path / "build")  # gcc -Werror accepted it
    stored = ctypes.string_at(ctypes.addressof(ctypes.c_char.in_dll(engine._lib, "td_native_model_name")))
    assert stored.decode("utf-8") == name
    assert engine.run(bytes(640)) == HostEngine.build(ad_model, tmp_path / "plain").run(bytes(640))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
def test_kernels_and_generated_model_compile_warning_free_for_cortex_m4(ad_model, tmp_path):
    model, _ = _hostile_copy(ad_model, tmp_path)
    plan = emit_native_sources(model, tmp_path)
    # IC's generated source holds every newer construct: ADD/SOFTMAX structs, nested shape arrays.
    ic_plan = emit_native_sources(load_tflite(mlperf_model("ic")), tmp_path / "ic")
    sources = [plan.model_source, ic_plan.model_source] + sorted((firmware_dir() / "engine").glob("*.c"))
    for source in sources:
        result = subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, f"-I{firmware_dir() / 'include'}",
                                 f"-I{firmware_dir() / 'engine'}", "-c", str(source), "-o",
                                 str(tmp_path / f"{source.parent.name}-{source.stem}.o")], capture_output=True,
                                text=True)
        assert result.returncode == 0 and not result.stderr, f"{source.name}: {result.stderr}"


def test_describe_plan_lists_every_op_with_its_memory(tmp_path):
    model = load_tflite(mlperf_model("ic"))
    plan = emit_native_sources(model, tmp_path)
    rows = describe_plan(plan)
    assert [row["op"] for row in rows] == model.op_names
    assert {"op_index", "op", "kernel", "output_offset", "output_bytes", "scratch_bytes", "placement"} <= set(rows[0])
    for row, op in zip(rows, model.operators):
        assert row["output_bytes"] == model.tensors[op.outputs[0]].nbytes
        assert 0 <= row["output_offset"] <= plan.activation_bytes - row["output_bytes"]
    assert {row["kernel"] for row in rows} >= {"conv_2d_fast", "elementwise_fast", "softmax", "(view)"}
    assert all(row["variant"].startswith("dsp") for row in rows if row["op"] == "CONV_2D")
    # ResNet-8 fits below its liveness bound only because convolutions stream over the inputs they consume.
    assert any(row["placement"] == "overlaps input" for row in rows)
    assert plan.activation_bytes < plan.lower_bound_bytes


def test_equal_constants_are_stored_once():
    """Weights shared between ops (or equal quantization tables) take flash once."""
    import numpy as np

    from tinydeploy.engine.registry import Constants

    constants = Constants()
    first = constants.array("a", "int8_t", np.arange(-5, 5, dtype=np.int8))
    second = constants.array("b", "int8_t", np.arange(-5, 5, dtype=np.int8))
    other_type = constants.array("c", "int16_t", np.arange(-5, 5, dtype=np.int16))
    other_values = constants.array("d", "int8_t", np.arange(-4, 6, dtype=np.int8))
    assert first == second and len({first, other_type, other_values}) == 3
    assert constants.flash_bytes == 10 + 20 + 10


def _concatenation_model(count: int) -> bytes:
    """CONCATENATION of `count` int8 inputs of 2 values each, along the last axis."""
    from single_op_models import GraphSpec, OpSpec, TensorSpec, build_model, options

    tensors = [TensorSpec(f"in{i}", (1, 2), "int8", 0.05) for i in range(count)]
    tensors.append(TensorSpec("out", (1, 2 * count), "int8", 0.05))
    op = OpSpec("CONCATENATION", list(range(count)), [count], "ConcatenationOptions",
                options("ConcatenationOptionsT", axis=-1))
    return build_model(GraphSpec(tensors, [op], list(range(count)), [count]))


def test_a_concatenation_tflm_cannot_allocate_is_refused_by_both_engines():
    """TFLM's CONCATENATION takes at most 10 inputs: beyond, host TFLM (flash's reference) fails to allocate, so
    analyze must not say FITS for either engine."""
    from tflite_micro import runtime

    from tinydeploy.engines.support import engine_support, require_engine
    from tinydeploy.model.tflite import parse_tflite

    runtime.Interpreter.from_bytes(_concatenation_model(10), arena_size=16384)  # allocates
    with pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(_concatenation_model(11), arena_size=16384)
    assert engine_support(parse_tflite(_concatenation_model(10)), "native").runs
    wide = parse_tflite(_concatenation_model(11))
    with pytest.raises(TinydeployError) as caught:
        require_engine(wide, "native")
    line = caught.value.one_line()
    assert "11 inputs" in line and "at most 10" in line and "no tinydeploy engine runs" in line
    assert any("11 inputs" in problem for problem in engine_support(wide, "tflm").problems)
