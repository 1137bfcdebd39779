"""Fit verdicts on real-sized networks: float MobileNetV1 1.0/224 cannot fit a Nano 33 BLE, int8 0.25/96 can."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def float_mobilenet(tmp_path_factory):
    """keras.applications.MobileNet alpha 1.0, 224x224x3, random weights, as a float (unquantized) .tflite."""
    from tests.models import build_mobilenet, tf

    folder = tmp_path_factory.mktemp("mobilenet_float")
    model = build_mobilenet(1.0, 224)
    model.export(str(folder / "savedmodel"), format="tf_saved_model", verbose=False,
                 input_signature=[tf.TensorSpec((1, 224, 224, 3), tf.float32)])
    path = folder / "mobilenet_1.0_224_float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(folder / "savedmodel")).convert())
    return path


@pytest.fixture(scope="module")
def small_mobilenet(tmp_path_factory):
    """MobileNet alpha 0.25, 96x96x3, 2 classes, random weights; returns (raw .keras, normalized .keras, calib)."""
    from tests.models import build_mobilenet, normalize_batchnorm, save_keras

    folder = tmp_path_factory.mktemp("mobilenet_small")
    calib = np.random.default_rng(0).uniform(-1, 1, (32, 96, 96, 3)).astype(np.float32)
    np.save(folder / "calib.npy", calib)
    raw = save_keras(build_mobilenet(0.25, 96, classes=2), folder / "raw.keras")
    normalized = save_keras(normalize_batchnorm(build_mobilenet(0.25, 96, classes=2), calib[:8]),
                            folder / "normalized.keras")
    return raw, normalized, folder / "calib.npy"


def test_float_mobilenet_does_not_fit_nano33ble(float_mobilenet):
    assert 16_000_000 < float_mobilenet.stat().st_size < 18_000_000
    result = run_cli("analyze", float_mobilenet, "--board", "nano33ble", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["fits"] is False
    assert report["flash_overshoot_bytes"] == report["flash_bytes"] - report["flash_available"] > 0
    assert report["ram_overshoot_bytes"] == report["ram_bytes"] - report["ram_available"] > 0
    assert report["flash_bytes"] > float_mobilenet.stat().st_size

    plain = run_cli("analyze", float_mobilenet, "--board", "nano33ble")
    assert plain.returncode == 1
    text = " ".join(plain.stdout.split())
    assert "DOES NOT FIT" in text
    for overshoot in (report["flash_overshoot_bytes"], report["ram_overshoot_bytes"]):
        assert f"{overshoot:,} B" in text


def test_int8_small_mobilenet_fits_nano33ble(small_mobilenet, tmp_path):
    _, normalized, calib = small_mobilenet
    out = tmp_path / "mobilenet_0.25_96_int8.tflite"
    converted = run_cli("convert", normalized, "-o", out, "--calib", calib, "--json")
    assert converted.returncode == 0, converted.stderr
    report = json.loads(converted.stdout)
    assert not [w for w in report["warnings"] if "SOFTMAX" in w]
    assert report["agreement"]["outputs"][0]["kind"] == "classifier"
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"} <= set(report["op_counts"])
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(report["op_counts"])

    analysis = run_cli("analyze", out, "--board", "nano33ble", "--json")
    assert analysis.returncode == 0, analysis.stderr
    fit = json.loads(analysis.stdout)
    assert fit["fits"] is True and fit["arena_measured"] is True  # TFLM really ran it
    assert fit["flash_overshoot_bytes"] == 0 and fit["ram_overshoot_bytes"] == 0
    plain = run_cli("analyze", out, "--board", "nano33ble")
    assert plain.returncode == 0 and re.search(r"\bFITS\b", plain.stdout)


def test_untrained_mobilenet_softmax_abort_is_warned_and_analyze_still_answers(small_mobilenet, tmp_path):
    """Random init shrinks activations block by block: the logits' scale is ~0 and TFLM aborts in SOFTMAX."""
    raw, _, calib = small_mobilenet
    out = tmp_path / "raw_int8.tflite"
    converted = run_cli("convert", raw, "-o", out, "--calib", calib)
    assert converted.returncode == 0, converted.stderr
    assert "SOFTMAX" in converted.stderr and "TFLM aborts" in converted.stderr

    analysis = run_cli("analyze", out, "--board", "nano33ble", "--json")
    assert analysis.returncode == 0, analysis.stderr  # still fits: the arena falls back to an estimate
    fit = json.loads(analysis.stdout)
    assert fit["fits"] is True and fit["arena_measured"] is False and "TFLM" in fit["arena_note"]
