"""`tinydeploy convert`: int8 conversion of Keras/SavedModel models, pass-through, errors, lazy TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.conftest import mlperf_model, run_cli
from tinydeploy.errors import TinydeployError
from tinydeploy.model.convert import ensure_int8_tflite, load_samples, model_warnings
from tinydeploy.model.tflite import load_tflite, parse_tflite

DYNAMIC_BATCH_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}


def _tflm_run(tflite: bytes, samples: np.ndarray) -> np.ndarray:
    """TFLM's own interpreter (the golden reference): float samples in, dequantized outputs out."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=256 * 1024)
    scale, zero = interpreter.get_input_details(0)["quantization_parameters"]["scales"][0], \
        interpreter.get_input_details(0)["quantization_parameters"]["zero_points"][0]
    out_q = interpreter.get_output_details(0)["quantization_parameters"]
    outputs = []
    for sample in samples:
        interpreter.set_input(np.clip(np.round(sample[None] / scale) + zero, -128, 127).astype(np.int8), 0)
        interpreter.invoke()
        raw = interpreter.get_output(0).astype(np.float32)
        outputs.append(((raw - out_q["zero_points"][0]) * out_q["scales"][0]).reshape(-1))
    return np.stack(outputs)


def _one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# --------------------------------------------------------------------------------------- TensorFlow stays lazy


HEAVY_MODULES = ("tensorflow", "keras", "tf_keras")


def _modules_after_cli(args: list[str]) -> tuple[int, set[str]]:
    """Run the CLI in a fresh interpreter; return its exit code and which heavy modules it loaded."""
    code = ("import sys\nfrom tinydeploy.cli import main\ncode = 0\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            f"print('LOADED', code, *[m for m in {HEAVY_MODULES!r} if m in sys.modules], file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                            timeout=300)
    marker = [line for line in result.stderr.splitlines() if line.startswith("LOADED ")]
    assert marker, result.stderr[-2000:]
    _, exit_code, *loaded = marker[-1].split()
    return int(exit_code), set(loaded)


@pytest.mark.parametrize("args", [["--help"], ["boards"], ["convert", "--help"], ["analyze", "MODEL"]])
def test_commands_that_do_not_convert_never_import_tensorflow(args):
    if args == ["analyze", "MODEL"]:
        args = ["analyze", mlperf_model("ad")]
    exit_code, loaded = _modules_after_cli(args)
    assert exit_code in (0, 1) and not loaded


def test_converting_does_import_tensorflow(sine_model_files, tmp_path):
    """The check above can see TensorFlow when it is there."""
    exit_code, loaded = _modules_after_cli(["convert", sine_model_files.keras, "-o", tmp_path / "x.tflite",
                                            "--calib", sine_model_files.calib])
    assert exit_code == 0 and "tensorflow" in loaded


def test_missing_tensorflow_is_a_one_line_install_hint(tmp_path):
    model = tmp_path / "model.keras"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("config.json", "{}")
    # `sys.modules[name] = None` makes `import tensorflow` raise ImportError, as on a machine without it.
    code = ("import sys; sys.modules['tensorflow'] = None; from tinydeploy.cli import main; "
            f"main(['convert', {str(model)!r}, '-o', {str(tmp_path / 'out.tflite')!r}, '--calib', 'random'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    _one_line_error(result, "TensorFlow", "pip install 'tinydeploy[convert]'")
    assert not (tmp_path / "out.tflite").exists()


# --------------------------------------------------------------------------------------- bad input, no TF needed


def _garbage(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make_model, fragments", [
    (lambda d: d / "absent.keras", ["model not found"]),
    (lambda d: _garbage(d / "garbage.h5", b"\x00garbage" * 40), ["garbage.h5 is not a Keras model"]),
    (lambda d: _garbage(d / "garbage.keras", b"not a zip at all"), ["garbage.keras is not a Keras model"]),
    (lambda d: _garbage(d / "broken.keras", b"PK\x03\x04 and then nothing"), ["not a Keras model"]),
    (lambda d: _garbage(d / "notes.txt", b"hello"), ["not a model tinydeploy can read"]),
    (lambda d: _garbage(d / "garbage.tflite", b"\x01" * 64), ["not a valid TFLite model"]),
    (lambda d: (d / "emptydir").mkdir() or d / "emptydir", ["not a SavedModel"]),
])
def test_unusable_model_is_a_one_line_error(tmp_path, make_model, fragments):
    model = make_model(tmp_path)
    result = run_cli("convert", model, "-o", tmp_path / "out.tflite", "--calib", "random")
    _one_line_error(result, *fragments)
    assert not (tmp_path / "out.tflite").exists()


def test_keras_zip_without_config_is_not_a_model(tmp_path):
    model = tmp_path / "other.keras"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("readme.txt", "hello")
    _one_line_error(run_cli("convert", model, "-o", tmp_path / "out.tflite", "--calib", "random"),
                    "not a Keras model", "config.json")


def test_output_path_problems_are_one_line_errors(tmp_path):
    model = mlperf_model("ad")
    (tmp_path / "taken.tflite").write_bytes(b"keep me")
    _one_line_error(run_cli("convert", model, "-o", tmp_path), "output path is a directory")
    _one_line_error(run_cli("convert", model, "-o", tmp_path / "taken.tflite"), "already exists", "--force")
    assert (tmp_path / "taken.tflite").read_bytes() == b"keep me"
    _one_line_error(run_cli("convert", model, "-o", tmp_path / "no" / "such" / "dir.tflite"), "does not exist")
    _one_line_error(run_cli("convert", model, "-o", "/proc/model.tflite"), "/proc")


@pytest.mark.parametrize("data, fragments", [
    (np.zeros((5, 2), np.float32), ["shape (5, 2)", "(N, 1)"]),
    (np.zeros((0, 1), np.float32), ["no samples"]),
    (np.array([[1.0], [np.nan]], np.float32), ["NaN or Inf", "sample 1"]),
    (np.array([[np.inf]], np.float64), ["NaN or Inf"]),
    (np.array(["a", "b"]), ["dtype <U1"]),
    (np.array([[1 + 2j]]), ["dtype complex128"]),
])
def test_bad_calibration_arrays_are_rejected(tmp_path, data, fragments):
    path = tmp_path / "calib.npy"
    np.save(path, data)
    with pytest.raises(TinydeployError) as error:
        load_samples(path, (1,), "x", "calibration")
    for fragment in fragments:
        assert fragment in error.value.one_line()


def test_calibration_file_forms_that_are_accepted(tmp_path):
    images = np.random.default_rng(0).uniform(0, 1, (3, 4, 4, 1))
    np.save(tmp_path / "plain.npy", images)
    np.save(tmp_path / "batched.npy", images[:, None])  # (N, 1, ...): one batch of 1 per sample
    np.savez(tmp_path / "one.npz", anything=images)
    np.savez(tmp_path / "named.npz", image=images, labels=np.arange(3))
    for name in ("plain.npy", "batched.npy", "one.npz", "named.npz"):
        samples = load_samples(tmp_path / name, (4, 4, 1), "image", "calibration")
        assert samples.dtype == np.float32 and samples.shape == (3, 4, 4, 1)
        np.testing.assert_allclose(samples, images.astype(np.float32))
    np.save(tmp_path / "ints.npy", np.arange(6, dtype=np.uint8))
    assert load_samples(tmp_path / "ints.npy", (1,), "x", "calibration").shape == (6, 1)


def test_unreadable_calibration_files(tmp_path):
    (tmp_path / "text.npy").write_text("hello")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 1)), b=np.zeros((2, 1)))
    cases = [(tmp_path / "absent.npy", "not found"), (tmp_path / "text.npy", "not a numpy"),
             (tmp_path / "two.npz", "holds 2 arrays"), (tmp_path, "is a directory")]
    for path, fragment in cases:
        with pytest.raises(TinydeployError, match=fragment):
            load_samples(path, (1,), "x", "calibration")


# --------------------------------------------------------------------------------------- int8 .tflite pass-through


def test_int8_tflite_passes_through_unchanged(tmp_path):
    model = mlperf_model("kws")
    out = tmp_path / "copy.tflite"
    result = run_cli("convert", model, "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passthrough"] is True and report["agreement"] is None
    assert out.read_bytes() == model.read_bytes()
    assert ensure_int8_tflite(model) == model.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name != "copy.tflite"]  # no temp file left behind


def test_float_tflite_converts_with_calibration_and_is_refused_without(tmp_path, sine_model_files):
    from tests.models import tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(sine_model_files.saved_model))
    float_model = tmp_path / "float.tflite"
    float_model.write_bytes(converter.convert())
    result = run_cli("convert", float_model, "-o", tmp_path / "out.tflite")
    _one_line_error(result, "float", "needs calibration inputs", "--calib")
    with pytest.raises(TinydeployError, match="float"):
        ensure_int8_tflite(float_model)
    converted = parse_tflite(ensure_int8_tflite(float_model, str(sine_model_files.calib)))
    assert converted.is_quantized_int8() and converted.op_names == ["FULLY_CONNECTED"] * 3


# --------------------------------------------------------------------------------------- conversions


def _assert_full_int8_batch1(tflite: bytes, input_shape: tuple, output_shape: tuple) -> None:
    model = parse_tflite(tflite)
    assert model.is_quantized_int8() and not model.float_tensors()
    assert not set(model.op_names) & DYNAMIC_BATCH_OPS
    assert model.tensors[model.inputs[0]].shape == input_shape
    assert model.tensors[model.outputs[0]].shape == output_shape


def test_sine_model_converts_to_int8_that_tflm_runs(sine_converted):
    result = sine_converted.result
    _assert_full_int8_batch1(result.tflite, (1, 1), (1, 1))
    assert load_tflite(sine_converted.path).op_names == ["FULLY_CONNECTED"] * 3
    (output,) = result.agreement.outputs
    assert result.agreement.source == "validation" and result.agreement.samples == 200
    assert output.kind == "values" and output.top1_agreement is None
    assert output.rmse < 3 * output.lsb  # int8 stays within a few steps of the float model
    assert not result.warnings
    x = np.linspace(0.2, 6.0, 30, dtype=np.float32).reshape(-1, 1)
    np.testing.assert_allclose(_tflm_run(result.tflite, x)[:, 0], np.sin(x[:, 0]), atol=0.15)


def test_cnn_classifier_converts_and_agrees_with_float(cnn_converted, cnn_model_files):
    result = cnn_converted.result
    _assert_full_int8_batch1(result.tflite, (1, 28, 28, 1), (1, 4))
    ops = set(load_tflite(cnn_converted.path).op_names)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"} <= ops
    (output,) = result.agreement.outputs
    assert output.kind == "classifier" and output.top1_agreement >= 0.95
    validate = np.load(cnn_model_files.validate)[:40]
    labels = np.load(cnn_model_files.labels)[:40]
    assert np.mean(np.argmax(_tflm_run(result.tflite, validate), axis=1) == labels) >= 0.9


@pytest.mark.parametrize("source", ["h5", "saved_model"])
def test_h5_and_saved_model_give_the_same_int8_model_as_keras(source, sine_model_files, sine_converted):
    from tinydeploy.model.convert import convert_to_int8

    result = convert_to_int8(getattr(sine_model_files, source), str(sine_model_files.calib))
    assert result.source_format == source
    _assert_full_int8_batch1(result.tflite, (1, 1), (1, 1))
    reference = load_tflite(sine_converted.path)
    converted = parse_tflite(result.tflite)
    assert converted.op_names == reference.op_names
    for a, b in zip((converted.tensors[i] for i in converted.inputs + converted.outputs),
                    (reference.tensors[i] for i in reference.inputs + reference.outputs)):
        assert a.quant.scales == pytest.approx(b.quant.scales) and a.quant.zero_points == b.quant.zero_points
    assert result.agreement.source == "calibration" and result.agreement.samples == 300


def test_cli_convert_reports_agreement_table_and_json(tmp_path, cnn_model_files):
    out = tmp_path / "cnn.tflite"
    result = run_cli("convert", cnn_model_files.keras, "-o", out, "--calib", cnn_model_files.calib,
                     "--validate", cnn_model_files.validate)
    assert result.returncode == 0, result.stderr
    assert "top-1" in result.stdout and "% agree" in result.stdout and f"{out.stat().st_size:,} B" in result.stdout
    assert "on 200 validation samples" in result.stdout
    assert not result.stderr.strip()  # TensorFlow's own chatter stays hidden
    _assert_full_int8_batch1(out.read_bytes(), (1, 28, 28, 1), (1, 4))

    again = run_cli("convert", cnn_model_files.keras, "-o", out, "--calib", "random", "--force", "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert "random" in again.stderr and "wrong for real inputs" in again.stderr
    assert any("wrong for real inputs" in w for w in report["warnings"])
    assert report["calibration"] == "random" and report["size_bytes"] == out.stat().st_size
    assert report["agreement"]["outputs"][0]["kind"] == "classifier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.tflite"]  # atomic write: no temp left


def test_keras_input_needs_calibration_and_right_shape(tmp_path, sine_model_files):
    out = tmp_path / "out.tflite"
    _one_line_error(run_cli("convert", sine_model_files.keras, "-o", out), "needs calibration", "--calib random")
    np.save(tmp_path / "images.npy", np.zeros((4, 28, 28, 1), np.float32))
    _one_line_error(run_cli("convert", sine_model_files.keras, "-o", out, "--calib", tmp_path / "images.npy"),
                    "shape (4, 28, 28, 1)", "(N, 1)")
    assert not out.exists()


def test_degenerate_softmax_scale_is_warned_and_really_aborts_tflm(tmp_path):
    """Logits that never move calibrate to a scale TFLM's SOFTMAX cannot handle: the converter must say so."""
    from tests.models import keras
    from tinydeploy.model.convert import convert_to_int8

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax",
                                                                    kernel_initializer="zeros")])
    model.save(tmp_path / "flat.keras")
    result = convert_to_int8(tmp_path / "flat.keras", "random")
    assert any("SOFTMAX" in w and "TFLM aborts" in w for w in result.warnings)
    assert model_warnings(parse_tflite(result.tflite)) == [w for w in result.warnings if "SOFTMAX" in w]
    (tmp_path / "flat.tflite").write_bytes(result.tflite)
    probe = ("from tflite_micro import runtime; "
             f"runtime.Interpreter.from_bytes(open({str(tmp_path / 'flat.tflite')!r}, 'rb').read(), arena_size=65536)")
    crashed = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120)
    assert crashed.returncode != 0


def test_plain_tf_saved_model_and_ops_without_int8_kernels(tmp_path):
    """A SavedModel that is not from Keras converts too; ops TFLite cannot run in int8 are named."""
    from tests.models import tf
    from tinydeploy.model.convert import convert_to_int8

    class Odd(tf.Module):
        def __init__(self):
            super().__init__()
            self.weights = tf.Variable(tf.fill([4, 4], 0.5))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.math.sin(tf.matmul(x, self.weights))}

    module = Odd()
    tf.saved_model.save(module, str(tmp_path / "odd"), signatures={"serving_default": module.serve})
    result = convert_to_int8(tmp_path / "odd", "random")
    model = parse_tflite(result.tflite)
    assert model.tensors[model.inputs[0]].shape == (1, 4) and "FULLY_CONNECTED" in model.op_names
    assert any("stay float" in w and "SIN" in w for w in result.warnings)
    assert result.agreement.outputs[0].name == "y"


@pytest.mark.slow
def test_a_converter_crash_is_a_one_line_error_and_unrolling_the_lstm_converts(tmp_path):
    """TensorFlow's int8 calibrator dies with SIGSEGV on a Keras LSTM's loop: convert survives it and names the way."""
    from tests.models import keras

    keras.utils.set_random_seed(0)
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).uniform(-1, 1, (16, 10, 5)).astype(np.float32))
    for unroll in (False, True):
        model = keras.Sequential([keras.Input((10, 5)), keras.layers.LSTM(8, unroll=unroll), keras.layers.Dense(3)])
        model.save(tmp_path / f"lstm_{unroll}.keras")
    result = run_cli("convert", tmp_path / "lstm_False.keras", "-o", tmp_path / "out.tflite", "--calib",
                     tmp_path / "calib.npy")
    _one_line_error(result, "the TFLite converter crashed (SIGSEGV)", "unroll=True")
    assert not (tmp_path / "out.tflite").exists()
    result = run_cli("convert", tmp_path / "lstm_True.keras", "-o", tmp_path / "out.tflite", "--calib",
                     tmp_path / "calib.npy")
    assert result.returncode == 0, result.stderr
    # TensorFlow leaves the gates' SPLIT float on about one conversion in three; convert tries again
    assert load_tflite(tmp_path / "out.tflite").classification.kind == "int8", result.stdout
