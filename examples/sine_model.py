"""Train the classic TinyML "hello world": a small MLP that learns y = sin(x) on [0, 2*pi].

Writes the Keras model and a calibration set for `tinydeploy flash`:

    python examples/sine_model.py build/sine.keras build/sine_calib.npy
"""

from __future__ import annotations

import sys
from pathlib import Path


def make_sine_model(seed: int = 1, epochs: int = 60):
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    x = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=(2000, 1)).astype("float32")
    y = np.sin(x) + np.random.default_rng(seed + 1).normal(0, 0.05, size=x.shape).astype("float32")
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(1,)),
        tf.keras.layers.Dense(16, activation="relu"),
        tf.keras.layers.Dense(16, activation="relu"),
        tf.keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model, x[:200]


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python examples/sine_model.py MODEL.keras CALIB.npy")
    import numpy as np

    model_path, calib_path = Path(argv[0]), Path(argv[1])
    model_path.parent.mkdir(parents=True, exist_ok=True)
    calib_path.parent.mkdir(parents=True, exist_ok=True)
    model, calib = make_sine_model()
    model.save(model_path)
    np.save(calib_path, calib)
    print(f"wrote {model_path} and {calib_path} ({len(calib)} calibration samples)")


if __name__ == "__main__":
    main(sys.argv[1:])
