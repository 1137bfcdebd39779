"""Small int8 models built with TensorFlow for the native engine's conformance tests (TF imported lazily)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DenseCase:
    """One Dense layer: input shape without the batch of 1, units, activation, bias, quantization granularity."""

    input_shape: tuple[int, ...]
    units: int
    activation: str | None = None  # None, "relu", "relu6", "relu_n1_to_1" (a clip the converter fuses)
    use_bias: bool = True
    per_channel: bool = True
    seed: int = 0

    @property
    def label(self) -> str:
        return (f"in{'x'.join(map(str, self.input_shape))}-u{self.units}-{self.activation or 'none'}"
                f"-{'bias' if self.use_bias else 'nobias'}-{'pc' if self.per_channel else 'pt'}")


def convert_int8(keras_model, input_shape: tuple[int, ...], seed: int, per_channel: bool = True,
                 float_io: bool = False) -> bytes:
    """Full-int8 conversion calibrated on seeded normal samples; int8 input and output unless float_io (then the
    model starts with QUANTIZE and ends with DEQUANTIZE)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(32):
            yield [rng.normal(0.0, 1.0, size=(1, *input_shape)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if not per_channel:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        converter._experimental_disable_per_channel = True
    return bytes(converter.convert())


def dense_model(case: DenseCase) -> bytes:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(case.seed)
    activation = {"relu6": tf.nn.relu6, "relu_n1_to_1": lambda x: tf.clip_by_value(x, -1.0, 1.0)}.get(
        case.activation, case.activation)
    inputs = tf.keras.Input(shape=case.input_shape, batch_size=1)
    outputs = tf.keras.layers.Dense(case.units, activation=activation, use_bias=case.use_bias,
                                    bias_initializer="random_normal")(inputs)
    return convert_int8(tf.keras.Model(inputs, outputs), case.input_shape, case.seed, case.per_channel)


def sine_model(seed: int = 0) -> bytes:
    """The TFLM 'hello world' shape: 1 -> 16 relu -> 16 relu -> 1, briefly trained on sin(x)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 2 * np.pi, size=(1000, 1)).astype(np.float32)
    y = np.sin(x)
    model = tf.keras.Sequential([tf.keras.Input(shape=(1,), batch_size=1),
                                 tf.keras.layers.Dense(16, activation="relu"),
                                 tf.keras.layers.Dense(16, activation="relu"),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    return convert_int8(model, (1,), seed)


def tflm_outputs(model_bytes: bytes, inputs: list[np.ndarray], arena_size: int = 256 * 1024) -> list[bytes]:
    """Golden outputs from TFLM's own interpreter (the tflite_micro host build)."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=arena_size)
    outputs = []
    for value in inputs:
        interpreter.set_input(value, 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).tobytes())
    return outputs


def random_int8_inputs(shape: tuple[int, ...], count: int, seed: int, dtype: str = "int8") -> list[np.ndarray]:
    """Uniform int8 values, or for a float32 input normal samples (with some far outside the calibrated range)."""
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        return [(rng.normal(0.0, 1.0, size=shape) * rng.choice([0.5, 1.0, 4.0])).astype(np.float32)
                for _ in range(count)]
    return [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(count)]


def assert_engine_matches_tflm(engine, model_bytes: bytes, shape: tuple[int, ...], count: int, seed: int,
                               label: str = "", tolerance: int = 0, dtype: str = "int8") -> None:
    """Equality with TFLM on seeded random inputs: byte for byte, or within `tolerance` int8 steps (softmax);
    float32 outputs must be bit-identical. A failure names the case, the seed and the input."""
    inputs = random_int8_inputs(shape, count, seed, dtype)
    golden = tflm_outputs(model_bytes, inputs)
    for number, (value, expected) in enumerate(zip(inputs, golden)):
        actual = engine.run(value.tobytes())
        if actual == expected:
            continue
        if len(actual) == len(expected) and tolerance and dtype == "int8":
            diff = np.frombuffer(actual, np.int8).astype(int) - np.frombuffer(expected, np.int8)
            if int(abs(diff).max()) <= tolerance:
                continue
        width = np.int8 if len(actual) == len(expected) and not engine_output_is_float(engine) else np.uint8
        diff = np.frombuffer(actual, width).astype(int) - np.frombuffer(expected, width)
        raise AssertionError(f"{label} seed={seed} input #{number}: {int((diff != 0).sum())} of {diff.size} "
                             f"bytes differ from TFLM (max |diff| {int(abs(diff).max())})")


def engine_output_is_float(engine) -> bool:
    return engine.output_bytes % 4 == 0 and "DEQUANTIZE" in engine.plan.ops[-1:]


def dense_flatten_model(seed: int = 0) -> bytes:
    """Dense on a 3-D input (keep_num_dims), Flatten (a RESHAPE), Dense: exercises views in the plan."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input(shape=(4, 10), batch_size=1)
    hidden = tf.keras.layers.Dense(8, activation="relu")(inputs)
    outputs = tf.keras.layers.Dense(3)(tf.keras.layers.Flatten()(hidden))
    return convert_int8(tf.keras.Model(inputs, outputs), (4, 10), seed)


@dataclass(frozen=True)
class LayerCase:
    """One Keras layer (built by name from `kind` and `options`) on a batch-1 input of `input_shape`."""

    kind: str  # a tf.keras.layers class name
    input_shape: tuple[int, ...]
    options: tuple[tuple[str, object], ...] = ()
    seed: int = 0
    per_channel: bool = True

    @property
    def label(self) -> str:
        opts = "-".join(f"{k}={v}" for k, v in self.options)
        return f"{self.kind}-{'x'.join(map(str, self.input_shape))}-{opts}-{'pc' if self.per_channel else 'pt'}"


def layer_model(case: LayerCase) -> bytes:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(case.seed)
    options = dict(case.options)
    if options.get("activation") == "relu6":
        options["activation"] = tf.nn.relu6
    if case.kind in ("Conv2D", "DepthwiseConv2D"):
        options.setdefault("bias_initializer", "random_normal")
    inputs = tf.keras.Input(shape=case.input_shape, batch_size=1)
    outputs = getattr(tf.keras.layers, case.kind)(**options)(inputs)
    if not case.per_channel:
        return convert_int8_per_tensor(tf.keras.Model(inputs, outputs), case.input_shape, case.seed)
    return convert_int8(tf.keras.Model(inputs, outputs), case.input_shape, case.seed)


def convert_int8_per_tensor(keras_model, input_shape: tuple[int, ...], seed: int) -> bytes:
    """Full-int8 conversion with per-tensor weight scales for every layer (the converter's private switch)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(32):
            yield [rng.normal(0.0, 1.0, size=(1, *input_shape)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter._experimental_disable_per_channel = True
    return bytes(converter.convert())
