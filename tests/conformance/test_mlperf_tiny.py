"""The four MLPerf Tiny models on seeded random inputs, with the fast and the reference kernels (not slow)."""

from __future__ import annotations

import pytest

from conftest import mlperf_model
from conformance.harness import KERNELS, SOFTMAX_LSB, assert_matches_tflm
from tinydeploy.engine.host import HostEngine
from tinydeploy.model.tflite import load_tflite


@pytest.mark.parametrize("fast_kernels", KERNELS)
@pytest.mark.parametrize("key", ["ad", "kws", "ic", "vww"])
def test_mlperf_tiny_model_matches_tflm(key, fast_kernels, tmp_path):
    model = load_tflite(mlperf_model(key))
    engine = HostEngine.build(model, tmp_path, fast_kernels=fast_kernels)
    variants = {step.variant for step in engine.plan.steps if step.op in ("CONV_2D", "FULLY_CONNECTED")}
    assert all(v.startswith("dsp") for v in variants) if fast_kernels else variants == {"reference"}
    tolerance = SOFTMAX_LSB if "SOFTMAX" in model.op_names else 0
    assert_matches_tflm(engine, model, count=3, seed=97, label=key, tolerance=tolerance)
    assert engine.plan.activation_bytes <= engine.plan.lower_bound_bytes
