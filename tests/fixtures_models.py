"""Session fixtures: the sine and CNN test models, built and converted to int8 once per test run.

TensorFlow is imported only when a test asks for one of these (so `-m "not slow"` runs stay light).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@dataclass(frozen=True)
class ModelFiles:
    """One Keras test model saved in every input format tinydeploy converts, with sample data."""

    keras: Path
    h5: Path
    saved_model: Path
    calib: Path  # .npy, calibration inputs
    validate: Path  # .npy, held-out inputs
    labels: Path | None = None  # .npy, true classes of `validate` (classifiers)


@dataclass(frozen=True)
class Converted:
    path: Path  # the int8 .tflite
    result: object  # tinydeploy.model.convert.ConversionResult


@pytest.fixture(scope="session")
def sine_model_files(tmp_path_factory) -> ModelFiles:
    from tests import models

    folder = tmp_path_factory.mktemp("sine")
    model = models.build_sine_model()
    return ModelFiles(
        keras=models.save_keras(model, folder / "sine.keras"),
        h5=models.save_keras(model, folder / "sine.h5"),
        saved_model=models.save_saved_model(model, folder / "sine_savedmodel"),
        calib=models.save_samples(models.sine_samples(300, seed=1), folder / "calib.npy"),
        validate=models.save_samples(models.sine_samples(200, seed=2), folder / "validate.npy"),
    )


@pytest.fixture(scope="session")
def cnn_model_files(tmp_path_factory) -> ModelFiles:
    from tests import models

    folder = tmp_path_factory.mktemp("cnn")
    model = models.build_cnn_model()
    calib, _ = models.cnn_samples(200, seed=1)
    validate, labels = models.cnn_samples(200, seed=2)
    np.save(folder / "labels.npy", labels)
    return ModelFiles(
        keras=models.save_keras(model, folder / "cnn.keras"),
        h5=models.save_keras(model, folder / "cnn.h5"),
        saved_model=models.save_saved_model(model, folder / "cnn_savedmodel"),
        calib=models.save_samples(calib, folder / "calib.npy"),
        validate=models.save_samples(validate, folder / "validate.npy"),
        labels=folder / "labels.npy",
    )


def _convert(files: ModelFiles, out: Path) -> Converted:
    from tinydeploy.model.convert import convert_to_int8

    result = convert_to_int8(files.keras, str(files.calib), files.validate)
    out.write_bytes(result.tflite)
    return Converted(out, result)


@pytest.fixture(scope="session")
def sine_converted(sine_model_files, tmp_path_factory) -> Converted:
    return _convert(sine_model_files, tmp_path_factory.mktemp("sine_int8") / "sine_int8.tflite")


@pytest.fixture(scope="session")
def cnn_converted(cnn_model_files, tmp_path_factory) -> Converted:
    return _convert(cnn_model_files, tmp_path_factory.mktemp("cnn_int8") / "cnn_int8.tflite")


@pytest.fixture(scope="session")
def sine_int8_tflite(sine_converted) -> Path:
    """The sine MLP (1 -> 16 -> 16 -> 1) as a full-int8 .tflite, input/output int8 [1, 1]."""
    return sine_converted.path


@pytest.fixture(scope="session")
def cnn_int8_tflite(cnn_converted) -> Path:
    """The 4-class CNN (28x28x1 -> conv/depthwise/pool/dense/softmax) as a full-int8 .tflite."""
    return cnn_converted.path
