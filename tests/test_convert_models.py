"""Converting what users have: the MLPerf Tiny authors' Keras 2 .h5 files (through tf_keras) and float or
dynamic-range .tflite files (through ai-edge-quantizer) to int8 models TFLM runs.

Calibration and validation samples are uniform random values over the input range the authors' own int8 model
was calibrated for (its input scale and zero point): no datasets here, but the right scale of inputs.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from tinydeploy.errors import TinydeployError

SHARED = REPO.parent / "shared" / "models"
CORPUS_FLOAT = REPO / "tests" / "corpus" / "cases" / "float_only.tflite"


def _shared(relative: str):
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/models is not beside the checkout)")
    return path


def _samples_in_reference_range(reference: str, tmp_path, count: int = 64) -> tuple:
    """(calibration .npy, validation .npy) drawn over the int8 reference model's input range."""
    from tinydeploy.model.tflite import load_tflite

    model = load_tflite(_shared(reference))
    tensor = model.tensors[model.inputs[0]]
    scale, zero = tensor.quant.scales[0], tensor.quant.zero_points[0]
    rng = np.random.default_rng(7)
    files = []
    for name in ("calib", "validate"):
        path = tmp_path / f"{name}.npy"
        np.save(path, rng.uniform((-128 - zero) * scale, (127 - zero) * scale, (count, *tensor.shape[1:]))
                .astype(np.float32))
        files.append(path)
    return tuple(files)


def _tflm_matches_litert(tflite: bytes, samples: int = 4) -> None:
    """TFLM's interpreter (the golden reference of every run) and LiteRT's builtin kernels agree within 1 LSB on
    the converted model: TFLM reads every weight the converter wrote."""
    from ai_edge_litert import interpreter as litert
    from tflite_micro import runtime

    micro = runtime.Interpreter.from_bytes(tflite, arena_size=1 << 20)
    lite = litert.Interpreter(model_content=tflite,
                              experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    lite.allocate_tensors()
    detail = micro.get_input_details(0)
    rng = np.random.default_rng(0)
    for _ in range(samples):
        x = rng.integers(-128, 128, detail["shape"]).astype(detail["dtype"])
        micro.set_input(x, 0)
        micro.invoke()
        lite.set_tensor(lite.get_input_details()[0]["index"], x)
        lite.invoke()
        expected = lite.get_tensor(lite.get_output_details()[0]["index"]).astype(int)
        assert np.abs(micro.get_output(0).astype(int) - expected).max() <= 1


@pytest.mark.slow
def test_a_keras2_h5_converts_through_tf_keras(tmp_path):
    """str_ww_ref_model.h5 (Keras 2, TF 2.x era): Keras 3 refuses its DepthwiseConv2D `groups` option."""
    from tinydeploy.model.convert import convert_to_int8
    from tinydeploy.model.tflite import load_tflite, parse_tflite

    source = _shared("mlperf-tiny-extra/str_ww_ref_model.h5")
    calib, validate = _samples_in_reference_range("mlperf-tiny-extra/str_ww_ref_model.tflite", tmp_path)
    started = time.monotonic()
    result = convert_to_int8(source, str(calib), validate)
    print(f"str_ww_ref_model.h5: {time.monotonic() - started:.1f} s")
    assert result.loaded_with == "tf_keras" and result.quantizer == "TensorFlow Lite converter"
    model = parse_tflite(result.tflite)
    authors = load_tflite(_shared("mlperf-tiny-extra/str_ww_ref_model.tflite"))
    assert model.classification.kind == "int8" and model.classification.input_dtypes == ("int8",)
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"):  # the authors' int8 layers
        assert model.op_names.count(op) == authors.op_names.count(op)
    assert model.tensors[model.inputs[0]].shape == authors.tensors[authors.inputs[0]].shape
    (output,) = result.agreement.outputs
    assert result.agreement.source == "validation" and output.kind == "classifier"
    assert output.top1_agreement >= 0.9 and output.rmse < 3 * output.lsb
    _tflm_matches_litert(result.tflite)


@pytest.mark.slow
@pytest.mark.parametrize("source, reference", [
    # dynamic-range DS-CNN without a signature and with pre-2.4 operator codes (< 256 KB of weights)
    ("mlperf-tiny-extra/kws_ref_model_float32.tflite", "mlperf-tiny/kws_ref_model.tflite"),
    # a float autoencoder over 256 KB, which ai-edge-quantizer writes with its buffers after the flatbuffer
    ("mlperf-tiny-extra/ad01_fp32.tflite", "mlperf-tiny/ad01_int8.tflite"),
])
def test_a_float_tflite_converts_with_ai_edge_quantizer_without_tensorflow(source, reference, tmp_path):
    from tests.test_convert import _modules_after_cli
    from tinydeploy.model.tflite import load_tflite

    calib, validate = _samples_in_reference_range(reference, tmp_path)
    out = tmp_path / "int8.tflite"
    started = time.monotonic()
    exit_code, loaded = _modules_after_cli(["convert", _shared(source), "-o", out, "--calib", calib,
                                            "--validate", validate])
    print(f"{source}: {time.monotonic() - started:.1f} s")
    assert exit_code == 0 and "tensorflow" not in loaded
    model = load_tflite(out)
    assert model.classification.kind == "int8" and not model.float_tensors()
    assert model.classification.input_dtypes == ("int8",) and model.classification.output_dtypes == ("int8",)
    assert model.op_names == load_tflite(_shared(source)).op_names  # the float graph, op for op
    _tflm_matches_litert(model.raw)

    report = json.loads(run_cli("convert", _shared(source), "-o", out, "--force", "--json", "--calib", calib,
                                "--validate", validate).stdout)
    assert report["quantizer"].startswith("ai-edge-quantizer") and report["source_kind"] in ("float", "hybrid")
    (output,) = report["agreement"]["outputs"]
    if output["kind"] == "classifier":
        assert output["top1_agreement"] >= 0.9
    else:
        assert output["rmse"] < 3 * output["lsb"]  # int8 stays within a few steps of the float model


@pytest.mark.slow
def test_flash_converts_a_float_tflite_on_the_way_given_calibration(tmp_path):
    from tinydeploy.flow import load_model_for_flash

    source = _shared("tflm-examples/hello_world_float.tflite")
    with pytest.raises(TinydeployError, match="float model") as refused:
        load_model_for_flash(source, None, lambda message: None, engine="native")
    assert "--calib" in refused.value.one_line()
    np.save(tmp_path / "x.npy", np.linspace(0, 2 * np.pi, 100, dtype=np.float32).reshape(-1, 1))
    model = load_model_for_flash(source, str(tmp_path / "x.npy"), lambda message: None, engine="native")
    assert model.name == "hello_world_float_int8" and model.classification.kind == "int8"


def test_a_float_tflite_without_calibration_is_refused_naming_the_way(tmp_path):
    result = run_cli("convert", CORPUS_FLOAT, "-o", tmp_path / "out.tflite")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "float" in line and "--calib" in line
    assert not (tmp_path / "out.tflite").exists()


def test_an_int16x8_tflite_passes_through_unchanged(tmp_path):
    source = REPO / "tests" / "corpus" / "cases" / "int16.tflite"
    result = run_cli("convert", source, "-o", tmp_path / "out.tflite", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passthrough"] is True and report["classification"]["kind"] == "int16x8"
    assert (tmp_path / "out.tflite").read_bytes() == source.read_bytes()


def test_a_keras_loading_error_keeps_its_cause_whole():
    """Keras 3 puts the cause after a dump of the layer's whole config; the one-line error keeps the cause."""
    from tinydeploy.model.convert import _error_cause

    config = "{" + ", ".join(f"'key{i}': {i}" for i in range(200)) + "}"
    error = TypeError(f"Error when deserializing class 'DepthwiseConv2D' using config={config}.\n\nException "
                      "encountered: Unrecognized keyword arguments passed to DepthwiseConv2D: {'groups': 1}")
    assert _error_cause(error) == "Unrecognized keyword arguments passed to DepthwiseConv2D: {'groups': 1}"
    long_reason = "x" * 500
    try:
        raise ValueError("wrapper") from OSError(long_reason)
    except ValueError as chained:
        assert _error_cause(chained) == long_reason  # the innermost cause, not cut at 200 characters
