"""Whole models from TFLM's examples with recurrent ops (UNIDIRECTIONAL_SEQUENCE_LSTM, SVDF) in the native engine:
outputs byte-equal to TFLM over consecutive invokes on the host, the generated C for the Cortex-M4, and the virtual
board. Models the engine cannot run yet are skipped with the reason."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from stateful_conformance import assert_invokes_match_tflm, random_inputs
from test_engine_native import CORTEX_M4_FLAGS
from tinydeploy.engine.host import HostEngine
from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import load_tflite, parse_tflite
from tinydeploy.paths import firmware_dir

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "tflm-examples"
INVOKES = 5
RECURRENT_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "SVDF")
# Input spread (fraction of the int8 range around the zero point) that keeps each model's outputs unsaturated, and
# the distinct output values the golden outputs must then show. keyword_scrambled's scrambled weights saturate its
# two class scores whatever the input (its SVDF state is compared in test_conformance_svdf.py).
SPREAD = {"micro_speech_lstm": 0.02, "dtln_noise_suppression": 1.0, "keyword_scrambled": 1.0,
          "keyword_scrambled_8bit": 1.0}
DISTINCT = {"micro_speech_lstm": 6, "dtln_noise_suppression": 6, "keyword_scrambled": 1, "keyword_scrambled_8bit": 1}


def example(name: str):
    path = EXAMPLES / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/models/tflm-examples is not beside the checkout)")
    return load_tflite(path)


@pytest.mark.parametrize("name", ["micro_speech_lstm", "dtln_noise_suppression", "keyword_scrambled",
                                  "keyword_scrambled_8bit"])
def test_whole_model_matches_tflm_over_invokes(name, tmp_path):
    model = example(name)
    try:
        engine = HostEngine.build(model, tmp_path)
    except TinydeployError as exc:  # keyword_scrambled: int16 QUANTIZE and SOFTMAX around the SVDFs (int16 ops' work)
        if any(op in exc.message for op in RECURRENT_OPS):
            raise
        pytest.skip(f"{name}: {exc.message}")
    assert_invokes_match_tflm(engine, model, random_inputs(model, INVOKES, 11, SPREAD[name]), name,
                              min_distinct=DISTINCT[name])


def test_micro_speech_lstm_output_streams_over_its_input_and_matches_tflm(tmp_path):
    """The LSTM's own output (the graph cut after it in the test's copy): written over input rows it has consumed."""
    from tflite_edit import edit_tflite

    original = example("micro_speech_lstm")
    lstm = original.operators[0]

    def lstm_only(flatbuffer):
        graph = flatbuffer.subgraphs[0]
        graph.outputs = [lstm.outputs[0]]
        graph.operators = graph.operators[:1]

    model = parse_tflite(edit_tflite(original.raw, lstm_only))
    engine = HostEngine.build(model, tmp_path)
    assert engine.plan.steps[0].placement == "overlaps input"
    source, result = (model.tensors[i] for i in (lstm.inputs[0], lstm.outputs[0]))
    state = sum(model.tensors[i].nbytes for i in (lstm.inputs[18], lstm.inputs[19]))
    assert engine.plan.activation_bytes < source.nbytes + result.nbytes + state
    assert_invokes_match_tflm(engine, model, random_inputs(model, INVOKES, 5), "micro_speech_lstm LSTM output",
                              min_distinct=50)


@pytest.mark.parametrize("name", ["micro_speech_lstm", "dtln_noise_suppression"])
def test_state_tensors_never_share_bytes_with_anything(name, tmp_path):
    """Hidden and cell state keep their values between invokes: no tensor or scratch of any op may touch them."""
    from tinydeploy.engine import plan_native

    model = example(name)
    _, plan = plan_native(model)
    states = [t.index for t in model.tensors if t.is_variable]
    assert states and all(t in plan.offsets for t in states)
    spans = {("tensor", t): (offset, model.tensors[t].nbytes) for t, offset in plan.offsets.items()}
    spans.update({("scratch", op): span for op, span in plan.scratch.items()})
    for state in states:
        start, size = plan.offsets[state], model.tensors[state].nbytes
        assert start + size <= plan.activation_bytes
        for key, (other, other_size) in spans.items():
            if key != ("tensor", state) and other_size:
                assert other + other_size <= start or start + size <= other, f"{key} overlaps state tensor {state}"


def test_float_lstm_is_refused_with_the_reason():
    model = example("trained_lstm")  # float32 LSTM: TFLM runs it with its float kernel; the engine is integer-only
    with pytest.raises(TinydeployError, match="float32"):
        HostEngine.build(model, Path("/nonexistent"))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
def test_generated_recurrent_models_compile_warning_free_for_cortex_m4(tmp_path):
    from tinydeploy.engine import emit_native_sources

    for name in ("micro_speech_lstm", "dtln_noise_suppression"):
        plan = emit_native_sources(example(name), tmp_path / name)
        result = subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, f"-I{firmware_dir() / 'include'}",
                                 f"-I{firmware_dir() / 'engine'}", "-c", str(plan.model_source), "-o",
                                 str(tmp_path / f"{name}.o")], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, f"{name}: {result.stderr}"


@pytest.mark.virtual
@pytest.mark.parametrize("name", ["dtln_noise_suppression", "keyword_scrambled_8bit"])
def test_recurrent_model_on_the_virtual_board_matches_host_tflm(name, tmp_path):
    """The flash pipeline after loading (generate, build, QEMU, golden inputs in order: the LSTM/SVDF state carries
    over on both sides). The loader's int8 classification refuses these models today (int16 cell state, float32
    intermediate tensors, int16 input), so this test loads the file itself; the CLI test below covers the user's
    path."""
    from tinydeploy.boards import get_board
    from tinydeploy.flow import flash_model

    model = example(name)
    try:
        report = flash_model(model, get_board("virtual"), "native", tmp_path / name, False, None, golden_count=4,
                             runs=3, warmup=1, progress=lambda message: None)
    except TinydeployError as exc:  # keyword_scrambled: int16 QUANTIZE and SOFTMAX around the SVDFs
        if any(op in exc.message for op in RECURRENT_OPS):
            raise
        pytest.skip(f"{name}: {exc.message}")
    assert report.run.outputs_match, f"golden inputs {report.run.mismatches} differ from host TFLM"
    assert report.run.activation_bytes == report.run.used_bytes > 0


@pytest.mark.virtual
def test_micro_speech_lstm_flash_cli_on_the_virtual_board(tmp_path):
    path = EXAMPLES / "micro_speech_lstm.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    result = run_cli("flash", path, "--board", "virtual", "--engine", "native", "--out", tmp_path / "proj",
                     "--json", "--samples", "3", "--runs", "2")
    if result.returncode == 2 and "float TFLite model" in result.stderr:
        pytest.skip("flash's model classification refuses int8 LSTM models (int16 cell state and float32 "
                    f"intermediate tensors are not float compute; the loader work fixes it): {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["outputs_match"] is True
