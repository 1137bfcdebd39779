"""Shared fixtures: the MLPerf Tiny models from ../shared, an isolated cache, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MODELS = REPO.parent / "shared" / "models" / "mlperf-tiny"
MLPERF_MODELS = {
    "ad": "ad01_int8.tflite",
    "kws": "kws_ref_model.tflite",
    "ic": "pretrainedResnet_quant.tflite",
    "vww": "vww_96_int8.tflite",
}


@pytest.fixture(scope="session", autouse=True)
def isolated_state(tmp_path_factory):
    """Keep the test run's cache apart from the user's (the PlatformIO core dir stays shared: it is costly)."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["TINYDEPLOY_CACHE_DIR"] = str(cache)
    yield


def mlperf_model(key: str) -> Path:
    path = SHARED_MODELS / MLPERF_MODELS[key]
    if not path.exists():
        pytest.skip(f"MLPerf Tiny model {path} is absent (../shared/models/mlperf-tiny is not beside the checkout)")
    return path


def local_tflm_library(purpose: str) -> Path:
    """$TINYDEPLOY_TFLM_LIB's Arduino TFLM library, or a skip saying how to give it (CI cannot download it) and
    what it is for (`purpose`, e.g. "to build and run the TFLM sketch")."""
    from tinydeploy.tflm.library import TFLM_LIB_ENV, TFLM_LIBRARY_COMMIT

    path = os.environ.get(TFLM_LIB_ENV)
    if not path or not (Path(path) / "src" / "TensorFlowLite.h").is_file():
        reason = (f"no local Arduino TFLM library: set ${TFLM_LIB_ENV} to a copy of tensorflow/tflite-micro-arduino-"
                  f"examples (commit {TFLM_LIBRARY_COMMIT[:7]}) {purpose}")
        print(f"SKIP: {reason}", file=sys.stderr)
        pytest.skip(reason)
    return Path(path)


@pytest.fixture(params=sorted(MLPERF_MODELS))
def mlperf_path(request) -> Path:
    return mlperf_model(request.param)


def run_cli(*args: str, timeout: float = 600, cwd: Path | None = None, env: dict | None = None):
    """Run the real `tinydeploy` command in a subprocess (exit code, stdout, stderr as the user sees them)."""
    return subprocess.run([sys.executable, "-m", "tinydeploy", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {}), "COLUMNS": "160"})


# Session fixtures with the sine and CNN Keras test models and their int8 conversions (tests/fixtures_models.py).
from tests.fixtures_models import (  # noqa: E402,F401
    cnn_converted, cnn_int8_tflite, cnn_model_files, sine_converted, sine_int8_tflite, sine_model_files,
)
