"""Small Keras models for the tests, trained briefly so that their int8 scales are sane.

Import this module only inside tests that need TensorFlow (it imports it at the top).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

SINE_RANGE = (0.0, 2 * np.pi)
CNN_SHAPE = (28, 28, 1)
CNN_CLASSES = 4


def sine_samples(count: int, seed: int = 1) -> np.ndarray:
    """Inputs of the sine model, shape (count, 1), float32."""
    rng = np.random.default_rng(seed)
    return rng.uniform(*SINE_RANGE, (count, 1)).astype(np.float32)


def build_sine_model(seed: int = 0, epochs: int = 60) -> keras.Model:
    """1 -> 16 relu -> 16 relu -> 1, fitted to sin(x) on [0, 2 pi]."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((1,), name="x"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1),
    ], name="sine")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x = sine_samples(2000, seed)
    model.fit(x, np.sin(x), epochs=epochs, batch_size=64, verbose=0)
    return model


def cnn_samples(count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 28x28 images of four classes (horizontal bar, vertical bar, diagonal, centred blob) in noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CNN_CLASSES, count)
    images = rng.normal(0.0, 0.15, (count, *CNN_SHAPE)).astype(np.float32)
    rows, cols = np.mgrid[0:28, 0:28]
    for image, label in zip(images, labels):
        at = rng.integers(6, 22)
        if label == 0:
            mask = np.abs(rows - at) <= 1
        elif label == 1:
            mask = np.abs(cols - at) <= 1
        elif label == 2:
            mask = np.abs(rows - cols - (at - 14)) <= 1
        else:
            mask = (rows - at) ** 2 + (cols - 14) ** 2 <= 16
        image[..., 0] += mask * rng.uniform(0.7, 1.0)
    return np.clip(images, 0.0, 1.0), labels


def build_cnn_model(seed: int = 0, epochs: int = 3) -> keras.Model:
    """28x28x1 -> conv 3x3 -> depthwise 3x3 -> pointwise -> pool -> dense -> softmax over 4 classes."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(CNN_SHAPE, name="image"),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
        keras.layers.Conv2D(16, 1, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CNN_CLASSES, activation="softmax"),
    ], name="cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    images, labels = cnn_samples(1500, seed)
    model.fit(images, labels, epochs=epochs, batch_size=32, verbose=0)
    return model


def save_keras(model: keras.Model, path: Path) -> Path:
    """Save as .keras (zip) or .h5 (legacy HDF5), by the path's suffix."""
    import warnings

    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the HDF5 "legacy format" notice
        model.save(path)
    return path


def save_saved_model(model: keras.Model, directory: Path) -> Path:
    """A SavedModel directory with a batch-None serving signature, as users export them."""
    model.export(str(directory), format="tf_saved_model", verbose=False)
    return Path(directory)


def save_samples(samples: np.ndarray, path: Path) -> Path:
    np.save(path, samples)
    return Path(path)


def float_predict(model: keras.Model, samples: np.ndarray) -> np.ndarray:
    return np.asarray(model(tf.constant(samples), training=False))


def build_mobilenet(alpha: float, size: int, classes: int = 1000) -> keras.Model:
    """keras.applications.MobileNet with random weights (no download)."""
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNet(input_shape=(size, size, 3), alpha=alpha, weights=None, classes=classes)


def normalize_batchnorm(model: keras.Model, samples: np.ndarray) -> keras.Model:
    """Set every BatchNormalization's moving statistics to what it sees on `samples`, layer by layer.

    A randomly initialised deep network shrinks its activations ~10x per block, so its logits calibrate
    to near-zero int8 scales (and TFLM's SOFTMAX then aborts); with re-estimated statistics each block
    starts from unit variance again, as in a trained network."""
    x = tf.constant(samples)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        feeding = keras.Model(model.inputs, layer.input)
        seen = np.asarray(feeding(x, training=False))
        axes = tuple(range(seen.ndim - 1))
        gamma, beta, _, _ = layer.get_weights()
        layer.set_weights([gamma, beta, seen.mean(axis=axes), seen.var(axis=axes) + 1e-6])
    return model
