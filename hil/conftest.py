"""The HIL suite's models: sine (built by tinydeploy, no TensorFlow) and the MLPerf Tiny KWS and AD models
from ../shared/models/mlperf-tiny (or $TINYDEPLOY_MLPERF_MODELS); tests of an absent model skip with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MLPERF_DIR = Path(os.environ.get("TINYDEPLOY_MLPERF_MODELS",
                                 Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "mlperf-tiny"))
MLPERF_FILES = {"kws": "kws_ref_model.tflite", "ad": "ad01_int8.tflite"}
MODELS = ("sine", "ad", "kws")


def load_model(key: str):
    from tinydeploy.hil.models import sine_model
    from tinydeploy.model.tflite import load_tflite

    if key == "sine":
        return sine_model()
    path = MLPERF_DIR / MLPERF_FILES[key]
    if not path.exists():
        pytest.skip(f"{path} is absent (set TINYDEPLOY_MLPERF_MODELS to the MLPerf Tiny models' folder)")
    return load_tflite(path)


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    """Each model in turn; module scope groups the tests by model, so each is flashed once."""
    return load_model(request.param)
