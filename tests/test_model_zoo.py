"""Models tinydeploy was not built against: every file in ../shared/models/tflm-examples (TFLite Micro's own
examples and its seanet integration-test models) and ../shared/models/mlperf-tiny-extra (the MLPerf Tiny
authors' float, .h5 and extra models) through `tinydeploy analyze`.

Each expectation is written from the model's known structure (PROVENANCE.txt beside the files, the published
architectures), not from what tinydeploy prints: what it computes in, its input/output types, which engine
runs it (or the reason none does), its MACs and whether it fits a Nano 33 BLE (1 MB flash, 256 KB RAM).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

SHARED = REPO.parent / "shared" / "models"
TFLM_EXAMPLES = SHARED / "tflm-examples"
MLPERF_EXTRA = SHARED / "mlperf-tiny-extra"


def _model(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/models is not beside the checkout)")
    return path


# ------------------------------------------------------------------------------ MACs from the architectures


def lstm_macs(steps: int, n_input: int, n_cell: int) -> int:
    """One LSTM layer without CIFG, peepholes or projection: 4 gates x (input + recurrent) products and the
    cell's 3 elementwise products, per time step."""
    return steps * (4 * n_cell * (n_input + n_cell) + 3 * n_cell)


def svdf_macs(input_size: int, filters: int, memory: int) -> int:
    return filters * (input_size + memory)  # feature projection + time filter over the memory


def mobilenet_v1_macs(alpha: float, size: int, channels_in: int, classes: int) -> int:
    layers = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [(2, 1024), (1, 1024)]
    side, channels = size // 2, int(32 * alpha)
    macs = side * side * channels * 3 * 3 * channels_in
    for stride, out in layers:
        side //= stride
        out_channels = int(out * alpha)
        macs += side * side * channels * 9 + side * side * channels * out_channels
        channels = out_channels
    return macs + channels * classes


def mobilenet_v2_macs() -> int:
    """MobileNetV2 1.0 at 224x224 from its published (expansion, channels, repeats, stride) table."""
    side, channels = 112, 32
    macs = side * side * channels * 3 * 3 * 3
    for expansion, out, repeats, stride in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for repeat in range(repeats):
            hidden = channels * expansion
            if expansion != 1:
                macs += side * side * channels * hidden  # 1x1 expansion
            side //= stride if repeat == 0 else 1
            macs += side * side * hidden * 9 + side * side * hidden * out  # depthwise 3x3, 1x1 projection
            channels = out
    return macs + side * side * channels * 1280 + 1280 * 1000


def resnet8_macs(width: int) -> int:
    """MLPerf Tiny's ResNet-8 with `width` channels in its first stage (16 for the reference, 40 for large)."""
    def conv(side: int, cin: int, cout: int, k: int) -> int:
        return side * side * cout * k * k * cin

    a, b, c = width, 2 * width, 4 * width
    return (conv(32, 3, a, 3) + 2 * conv(32, a, a, 3) + conv(16, a, b, 3) + conv(16, b, b, 3) + conv(16, a, b, 1)
            + conv(8, b, c, 3) + conv(8, c, c, 3) + conv(8, b, c, 1) + c * 10)


def dscnn_macs() -> int:
    return 25 * 5 * 64 * 10 * 4 + 4 * (25 * 5 * 64 * 9 + 25 * 5 * 64 * 64) + 64 * 12


def streaming_wakeword_macs() -> int:
    """str_ww: depthwise-separable 1-D convolutions (kernels 3, 5, 10, 15, valid padding) over 30 frames."""
    frames, total, channels = 30, 0, 40
    for kernel, out in ((3, 128), (5, 128), (10, 128), (15, 32)):
        frames -= kernel - 1
        total += frames * channels * kernel + frames * channels * out
        channels = out
    return total + 32 * 3


AUTOENCODER_MACS = sum(a * b for a, b in zip([640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640],
                                             [128, 128, 128, 128, 8, 128, 128, 128, 128, 640]))


# ------------------------------------------------------------------------------ the table

KERNEL = "kernel"  # the native engine's answer depends on kernels being added: it runs it, or names the gap


@dataclass(frozen=True)
class Expect:
    kind: str  # model.classify kind
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tflm: bool | str  # True: the TFLM engine runs it; a string: a fragment of the reason it cannot
    native: bool | str | tuple  # likewise; (KERNEL, fragments...): refused naming one of them, or runs
    fits: bool  # on nano33ble with the TFLM engine (analyze's default)
    macs: int
    unknown_macs: tuple[str, ...] = ()
    custom: tuple[str, ...] = ()


SIGNAL_OPS = ("SignalWindow", "SignalFftAutoScale", "SignalRfft", "SignalEnergy", "SignalFilterBank",
              "SignalFilterBankSquareRoot", "SignalFilterBankSpectralSubtraction", "SignalPCAN",
              "SignalFilterBankLog")
FLOAT = "float model"

TABLE = {
    # TFLM's audio front end: fixed-point signal processing in TFLM's signal-library custom ops (not in the
    # pinned Arduino library), then int32 arithmetic and an int8 (or float32) output
    (TFLM_EXAMPLES, "audio_preprocessor_int8.tflite"): Expect(
        "integer", ("int16",), ("int8",), "CUSTOM:SignalWindow", "CUSTOM:SignalWindow", True, 40,
        tuple(f"CUSTOM:{op}" for op in SIGNAL_OPS), SIGNAL_OPS),
    (TFLM_EXAMPLES, "audio_preprocessor_float.tflite"): Expect(
        "float", ("int16",), ("float32",), FLOAT, FLOAT, True, 40, tuple(f"CUSTOM:{op}" for op in SIGNAL_OPS),
        SIGNAL_OPS),
    # DTLN: two int8 LSTMs (257 -> 128, 128 -> 128, one frame), a dense layer to 257 and a sigmoid mask
    (TFLM_EXAMPLES, "dtln_noise_suppression.tflite"): Expect(
        "int8", ("int8",), ("int8",), True, (KERNEL, "UNIDIRECTIONAL_SEQUENCE_LSTM"), True,
        lstm_macs(1, 257, 128) + lstm_macs(1, 128, 128) + 128 * 257),
    (TFLM_EXAMPLES, "hello_world_float.tflite"): Expect(
        "float", ("float32",), ("float32",), FLOAT, FLOAT, True, 1 * 16 + 16 * 16 + 16 * 1),
    # keyword spotting with 7 int8 SVDF layers, int16 audio features in, int32 scores out
    (TFLM_EXAMPLES, "keyword_scrambled.tflite"): Expect(
        "int8", ("int16",), ("int32",), True, (KERNEL, "SVDF", "int16"), True,
        svdf_macs(96, 64, 8) + 3 * svdf_macs(16, 64, 8) + svdf_macs(16, 32, 32) + 2 * svdf_macs(32, 32, 32)
        + 4 * 64 * 16 + 32 * 2),
    (TFLM_EXAMPLES, "keyword_scrambled_8bit.tflite"): Expect(
        "int8", ("int16",), ("int32",), True, (KERNEL, "SVDF", "int16"), True,
        svdf_macs(96, 64, 8) + 3 * svdf_macs(16, 64, 8) + svdf_macs(16, 32, 32) + 2 * svdf_macs(32, 32, 32)
        + 4 * 64 * 16 + 32 * 2),
    # one int8 LSTM over 49 frames of 257 features (80 units), a dense layer to 3 classes
    (TFLM_EXAMPLES, "micro_speech_lstm.tflite"): Expect(
        "int8", ("int8",), ("int8",), True, (KERNEL, "UNIDIRECTIONAL_SEQUENCE_LSTM"), True,
        lstm_macs(49, 257, 80) + 49 * 80 * 3),
    # MobileNetV2 from PyTorch (NCHW input, hence TRANSPOSE): 3.4 M parameters cannot fit 1 MB of flash
    (TFLM_EXAMPLES, "mobilenet_v2_quantized_1x3x224x224.tflite"): Expect(
        "int8", ("int8",), ("int8",), True, (KERNEL, "TRANSPOSE"), False, mobilenet_v2_macs()),
    # TFLM's person detection: MobileNetV1 0.25 on 96x96 grayscale, 2 classes
    (TFLM_EXAMPLES, "person_detect.tflite"): Expect(
        "int8", ("int8",), ("int8",), True, True, True, mobilenet_v1_macs(0.25, 96, 1, 2)),
    # int8 ADD of two 128x128 images: two inputs
    (TFLM_EXAMPLES, "simple_add_model.tflite"): Expect(
        "int8", ("int8", "int8"), ("int8",), True, True, True, 0),
    # float LSTM (28 steps of 28 pixels, 20 units) and a dense layer to 10 classes
    (TFLM_EXAMPLES, "trained_lstm.tflite"): Expect(
        "float", ("float32",), ("float32",), FLOAT, FLOAT, True, lstm_macs(28, 28, 20) + 28 * 20 * 10),
    # the MLPerf Tiny anomaly-detection autoencoder in float32: 270 k float weights = 1.07 MB of flash
    (MLPERF_EXTRA, "ad01_fp32.tflite"): Expect(
        "float", ("float32",), ("float32",), FLOAT, FLOAT, False, AUTOENCODER_MACS),
    # DS-CNN keyword spotting converted with dynamic-range quantization: the 5 convolutions (over 1024 weights)
    # got int8 weights, activations stayed float
    (MLPERF_EXTRA, "kws_ref_model_float32.tflite"): Expect(
        "hybrid", ("float32",), ("float32",), "dynamic-range", "dynamic-range", True, dscnn_macs()),
    (MLPERF_EXTRA, "pretrainedResnet_large_int8.tflite"): Expect(
        "int8", ("int8",), ("int8",), True, True, True, resnet8_macs(40)),
    (MLPERF_EXTRA, "str_ww_ref_model.tflite"): Expect(
        "int8", ("int8",), ("int8",), True, True, True, streaming_wakeword_macs()),
}
NOT_TFLITE = {  # files analyze refuses, and the fragment of the refusal
    (TFLM_EXAMPLES, "person_detect_vela.tflite"): "Ethos-U",
    (MLPERF_EXTRA, "ad01.h5"): "tinydeploy convert",
    (MLPERF_EXTRA, "pretrainedResnet.h5"): "tinydeploy convert",
    (MLPERF_EXTRA, "str_ww_ref_model.h5"): "tinydeploy convert",
    (MLPERF_EXTRA, "vww_96.h5"): "tinydeploy convert",
}


def test_the_table_covers_every_model_file():
    """A model added to the shared folders needs a row here (seanet has its own test below)."""
    for folder in (TFLM_EXAMPLES, MLPERF_EXTRA):
        if not folder.is_dir():
            pytest.skip(f"{folder} is absent (../shared/models is not beside the checkout)")
        files = {p.name for p in folder.iterdir() if p.suffix in (".tflite", ".h5")}
        assert files == {name for (where, name) in (*TABLE, *NOT_TFLITE) if where == folder}


def _assert_engine(report: dict, engine: str, expected) -> None:
    verdict = report["engines"][engine]
    problems = " ".join(verdict["problems"])
    if expected is True:
        assert verdict["runs"], (engine, problems)
    elif isinstance(expected, tuple):  # (KERNEL, fragments...): refused naming the gap, or runs
        assert verdict["runs"] or any(fragment in problems for fragment in expected[1:]), (engine, problems)
    else:
        assert not verdict["runs"] and expected in problems, (engine, expected, problems)


def _one_error_line(result) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, (result.returncode, result.stderr[-800:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("where, name", sorted(TABLE), ids=lambda v: v if isinstance(v, str) else v.name)
def test_analyze_classifies_sizes_and_judges_each_model(where, name):
    path = _model(where, name)
    expected = TABLE[(where, name)]
    result = run_cli("analyze", path, "--board", "nano33ble", "--json", timeout=300)
    report = json.loads(result.stdout)
    # exit 0 only for a model an engine runs and that fits; the others' figures are what they would need
    assert report["runs"] is report["engines"][report["engine"]]["runs"]
    assert result.returncode == (0 if expected.fits and report["runs"] else 1), result.stderr[-800:]
    classification = report["classification"]
    assert classification["kind"] == expected.kind
    assert tuple(classification["input_dtypes"]) == expected.inputs
    assert tuple(classification["output_dtypes"]) == expected.outputs
    assert tuple(classification["custom_ops"]) == expected.custom
    assert report["fits"] is expected.fits
    assert report["macs"] == expected.macs
    assert tuple(report["macs_unknown_ops"]) == expected.unknown_macs
    assert all(m is None for m, op in zip(report["op_macs"], report["ops"]) if op in expected.unknown_macs)
    _assert_engine(report, "tflm", expected.tflm)
    _assert_engine(report, "native", expected.native)

    # The native engine either analyzes its own plan, or refuses in one line naming what does run the model:
    # the TFLM engine only when that one runs it, else why none does (never a round trip between the two).
    native = run_cli("analyze", path, "--board", "nano33ble", "--engine", "native", timeout=300)
    if report["engines"]["native"]["runs"]:
        assert native.returncode in (0, 1) and "native engine plan" in native.stdout, native.stderr[-800:]
        return
    line = _one_error_line(native)
    if report["engines"]["tflm"]["runs"]:
        assert "use --engine tflm" in line
    else:
        assert "--engine tflm" not in line and "--engine native" not in line
        assert "no tinydeploy engine runs" in line or "convert" in line


@pytest.mark.parametrize("where, name", sorted(NOT_TFLITE), ids=lambda v: v if isinstance(v, str) else v.name)
def test_analyze_refuses_what_it_cannot_analyze_naming_the_way(where, name):
    line = _one_error_line(run_cli("analyze", _model(where, name), "--board", "nano33ble"))
    assert NOT_TFLITE[(where, name)] in line
    if name.endswith("_vela.tflite"):
        assert "before Vela" in line


def test_generate_refuses_an_npu_model_and_takes_an_int8_lstm(tmp_path):
    """The int8 LSTM's float32 intermediate tensors used to be taken for float compute."""
    vela = run_cli("generate", _model(TFLM_EXAMPLES, "person_detect_vela.tflite"), "--engine", "tflm",
                   "-o", tmp_path / "vela")
    assert "Ethos-U" in _one_error_line(vela) and not (tmp_path / "vela").exists()
    lstm = run_cli("generate", _model(TFLM_EXAMPLES, "micro_speech_lstm.tflite"), "--engine", "tflm",
                   "-o", tmp_path / "lstm", env={"TINYDEPLOY_TFLM_MEASURE": "0"})
    assert lstm.returncode == 0, lstm.stderr[-800:]
    assert "AddUnidirectionalSequenceLSTM" in (tmp_path / "lstm" / "src" / "td_tflm_model.cpp").read_text()


# ------------------------------------------------------------------------------ seanet (int16x8, one op each)

SEANET_FAMILIES = {  # family -> (TFLM engine, native engine) as in the table above
    "add": (True, True),
    # the pinned library rounds these ops' rescale ratios to single precision: refused where an input shows it
    "sub": (("SUB", "SUB op 0: the pinned TFLM library", "single precision"), True),
    "conv": (True, True),
    "leaky_relu": (("LEAKY_RELU", "LEAKY_RELU op 0: the pinned TFLM library", "single precision"), True),
    "pad": (True, True),
    "quantize": (True, True),
    "strided_slice": (True, True),
}


def _seanet_files() -> list[Path]:
    return sorted((TFLM_EXAMPLES / "seanet").glob("*/*.tflite"))


def test_every_seanet_family_has_expectations():
    files = _seanet_files()
    if not files:
        pytest.skip(f"{TFLM_EXAMPLES / 'seanet'} is absent")
    assert {path.parent.name for path in files} == set(SEANET_FAMILIES)


def test_every_seanet_model_is_int16x8_and_judged_per_engine():
    """All 116 files in-process (the classification and both engines' checks need no TFLM run)."""
    from tinydeploy.analysis.compute import op_costs
    from tinydeploy.engines.support import engines_json
    from tinydeploy.model.tflite import load_tflite

    files = _seanet_files()
    if not files:
        pytest.skip(f"{TFLM_EXAMPLES / 'seanet'} is absent")
    for path in files:
        model = load_tflite(path)
        classification = model.classification
        assert classification.kind == "int16x8", path
        assert set(classification.input_dtypes) <= {"int16", "int32"}, path  # quantize0 takes int32
        assert all(cost.macs is not None for cost in op_costs(model)), path
        report = {"engines": engines_json(model)}
        tflm, native = SEANET_FAMILIES[path.parent.name]
        _assert_engine(report, "tflm", tflm)
        _assert_engine(report, "native", native)


@pytest.mark.slow
def test_analyze_runs_on_every_seanet_model():
    """The whole analyze (TFLM's arena measured on the host) on each file: all are tiny and fit."""
    from tinydeploy.boards import get_board
    from tinydeploy.flow import analyze
    from tinydeploy.model.tflite import load_tflite

    files = _seanet_files()
    if not files:
        pytest.skip(f"{TFLM_EXAMPLES / 'seanet'} is absent")
    board = get_board("nano33ble")
    for path in files:
        analysis = analyze(load_tflite(path), board, "tflm")
        assert analysis.arena.measured, (path, analysis.arena.note)
        assert analysis.verdict.fits, path
