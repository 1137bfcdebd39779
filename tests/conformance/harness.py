"""Shared machinery of the conformance suite: seeded case drawing, conversion by TensorFlow, and the comparison of
the native engine (built for the host) with TFLM's reference kernels (the tflite_micro host runtime).

A test module per op draws its cases with a CaseDrawer named after the module (so adding cases to one module does
not reshuffle another's), builds each case's Keras model with its own `build` function and calls check_case(). The
cases come from CONFORMANCE_SEED (env TD_CONFORMANCE_SEED to explore others); a failure names the case's label and
seed, and `-k <label>` replays it."""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pytest

from test_engine_native import CORTEX_M4_FLAGS

CONFORMANCE_SEED = int(os.environ.get("TD_CONFORMANCE_SEED", "20261124"))
SOFTMAX_LSB = 1  # the one op family allowed 1 int8 step (LOGISTIC/TANH are exact here too, so not loosened)

# Ops whose lowering has a fast (Cortex-M4 DSP) variant run with both kernel sets; the others with the reference.
KERNELS = [pytest.param(True, id="fast"), pytest.param(False, id="reference")]


@dataclass(frozen=True)
class Case:
    """One randomly drawn small model: `kind` names its builder's branch, `spec` its parameters."""

    kind: str
    spec: tuple[tuple[str, object], ...]
    ops: tuple[str, ...]  # ops the converted model must contain (proves the case tests what it says)
    seed: int
    per_channel: bool = True
    float_io: bool = False
    int16: bool = False  # 16-bit activations, 8-bit weights (TFLite's int16x8 mode)
    int32_bias: bool = False  # int16x8 with 32-bit biases and accumulators instead of 64-bit

    @property
    def label(self) -> str:
        parts = "-".join(f"{k}={v}" for k, v in self.spec).replace(" ", "")
        return (f"{self.kind}[{parts}]-{'pc' if self.per_channel else 'pt'}{'-float' if self.float_io else ''}"
                f"{'-16x8' if self.int16 else ''}{'-bias32' if self.int32_bias else ''}")

    @property
    def options(self) -> dict:
        return dict(self.spec)


class CaseDrawer:
    """Draws a module's cases from the suite seed and the module's name."""

    def __init__(self, name: str, seed: int = CONFORMANCE_SEED):
        self.rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        self.cases: list[Case] = []

    def add(self, kind: str, ops: Sequence[str], per_channel: bool = True, float_io: bool = False,
            int16: bool = False, int32_bias: bool = False, **spec) -> Case:
        case = Case(kind, tuple(spec.items()), tuple(ops), int(self.rng.integers(0, 2 ** 31)), per_channel, float_io,
                    int16, int32_bias)
        self.cases.append(case)
        return case

    def integer(self, low: int, high: int) -> int:
        """A uniform integer in [low, high]."""
        return int(self.rng.integers(low, high + 1))

    def choice(self, options: Sequence):
        return options[int(self.rng.integers(0, len(options)))]

    def image(self, low: int = 3, high: int = 12, channels: int = 6) -> tuple[int, int, int]:
        return self.integer(low, high), self.integer(low, high), self.integer(1, channels)

    def activation(self) -> str | None:
        return self.choice([None, "relu", "relu6"])

    def padding(self) -> str:
        return self.choice(["same", "valid"])


def keras_activation(name: str | None):
    import tensorflow as tf

    return {"relu6": tf.nn.relu6}.get(name, name)


def convert(keras_model, input_shapes: Sequence[tuple[int, ...]], seed: int, per_channel: bool = True,
            float_io: bool = False, int16: bool = False, int32_bias: bool = False) -> bytes:
    """Full-integer conversion calibrated on seeded normal samples: int8 (or, with int16, 16-bit activations and
    8-bit weights) inputs and outputs unless float_io (then the model starts with QUANTIZE, ends with DEQUANTIZE)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(32):
            yield [rng.normal(0.0, 1.0, size=(1, *shape)).astype(np.float32) for shape in input_shapes]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = (
        [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8] if int16
        else [tf.lite.OpsSet.TFLITE_BUILTINS_INT8])
    if not float_io:
        converter.inference_input_type = tf.int16 if int16 else tf.int8
        converter.inference_output_type = tf.int16 if int16 else tf.int8
    if not per_channel:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        converter._experimental_disable_per_channel = True
    if int32_bias:
        converter._experimental_full_integer_quantization_bias_type = tf.int32
    return bytes(converter.convert())


Builder = Callable[[Case], tuple]  # case -> (keras model, input shapes without the batch)

_CONVERTED: dict[Case, bytes] = {}


def converted(case: Case, build: Builder) -> bytes:
    """The case's .tflite, converted once per session."""
    if case not in _CONVERTED:
        import tensorflow as tf

        tf.keras.utils.set_random_seed(case.seed)
        keras_model, input_shapes = build(case)
        _CONVERTED[case] = convert(keras_model, input_shapes, case.seed, case.per_channel, case.float_io, case.int16,
                                   case.int32_bias)
    return _CONVERTED[case]


def edited(model_bytes: bytes, change: Callable[[object], None]) -> bytes:
    """A converted model changed through the schema's object API (retyped tensors, replaced ops)."""
    from tflite_edit import edit_tflite

    return edit_tflite(model_bytes, change)


def keras_input(shape: tuple[int, ...]):
    import tensorflow as tf

    return tf.keras.Input(shape=shape, batch_size=1)


def layer_model(case: Case, *layers) -> tuple:
    """A Keras model applying `layers` in turn to one input of the case's `shape`."""
    import tensorflow as tf

    inputs = outputs = keras_input(case.options["shape"])
    for layer in layers:
        outputs = layer(outputs)
    return tf.keras.Model(inputs, outputs), [case.options["shape"]]


def scaled_by(factor: float):
    """A layer multiplying its input by `factor` (spreads the calibrated range of the op after it)."""
    import tensorflow as tf

    return tf.keras.layers.Lambda(lambda t: t * factor)


def constant_operand(case: Case):
    """A seeded constant shaped for the case's `broadcast` ("channel", "row" or "scalar") over its `shape`."""
    import tensorflow as tf

    spec = case.options
    h, w, c = spec["shape"]
    shape = {"channel": (c,), "row": (w, 1), "scalar": ()}[spec["broadcast"]]
    return tf.constant(np.random.default_rng(case.seed).normal(0.5, 1.0, size=shape).astype(np.float32))


def binary_op_model(case: Case, layer: str, function: str, branch_first: bool = False) -> tuple:
    """A Keras model of a two-operand op (`layer`, e.g. "Add", or tf.`function` with a constant) by the case's kind:
    ...Inputs takes two model inputs, ...Branch the input and a 1x1 convolution of it (`branch_first` puts the
    convolution first), ...Constant the input and constant_operand(case); an `activation` adds a RELU."""
    import tensorflow as tf

    layers = tf.keras.layers
    spec = case.options
    first = keras_input(spec["shape"])
    inputs = [first]
    if case.kind.endswith("Inputs"):
        inputs.append(keras_input(spec["shape"]))
        outputs = getattr(layers, layer)()(inputs)
    elif case.kind.endswith("Branch"):
        branch = layers.Conv2D(spec["shape"][2], 1, bias_initializer="random_normal")(first)
        outputs = getattr(layers, layer)()([branch, first] if branch_first else [first, branch])
    else:
        constant = constant_operand(case)
        outputs = layers.Lambda(lambda t: getattr(tf, function)(t, constant))(first)
    if spec.get("activation"):
        outputs = layers.ReLU()(outputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]] * len(inputs)


def random_inputs(model, count: int, seed: int) -> list[list[np.ndarray]]:
    """Per inference, one array per model input: uniform over the whole integer range, or for float32 normal
    samples (some far outside the calibrated range)."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        arrays = []
        for index in model.inputs:
            tensor = model.tensors[index]
            dtype = np.dtype(tensor.dtype)
            if dtype.kind == "f":
                arrays.append((rng.normal(0.0, 1.0, size=tensor.shape) * rng.choice([0.5, 1.0, 4.0])).astype(dtype))
            else:
                info = np.iinfo(dtype)
                arrays.append(rng.integers(info.min, info.max, size=tensor.shape, endpoint=True, dtype=dtype))
        samples.append(arrays)
    return samples


def tflm_outputs(model_bytes: bytes, samples: list[list[np.ndarray]], output_count: int,
                 arena_size: int = 512 * 1024) -> list[list[bytes]]:
    """Golden outputs from TFLM's own interpreter: per inference, every output's bytes."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=arena_size)
    outputs = []
    for arrays in samples:
        for index, value in enumerate(arrays):
            interpreter.set_input(value, index)
        interpreter.invoke()
        outputs.append([np.ascontiguousarray(interpreter.get_output(i)).tobytes() for i in range(output_count)])
    return outputs


def assert_matches_tflm(engine, model, count: int, seed: int, label: str, tolerance: int = 0) -> None:
    """Every output of the engine equals TFLM's on seeded random inputs: byte for byte, or within `tolerance`
    integer steps. A failure names the case, the seed, the input and the output."""
    samples = random_inputs(model, count, seed)
    activations = sum(t.nbytes for t in model.tensors if not t.is_constant)  # more than any plan of them needs
    golden = tflm_outputs(model.raw, samples, len(model.outputs), max(512 * 1024, 2 * activations + (256 << 10)))
    for number, (arrays, expected) in enumerate(zip(samples, golden)):
        actual = engine.run([a.tobytes() for a in arrays])
        assert len(actual) == len(expected), f"{label}: {len(actual)} outputs, TFLM gives {len(expected)}"
        for position, (got, want) in enumerate(zip(actual, expected)):
            if got == want:
                continue
            dtype = np.dtype(model.tensors[model.outputs[position]].dtype)
            if len(got) != len(want):
                raise AssertionError(f"{label} seed={seed} input #{number} output {position}: {len(got)} bytes, "
                                     f"TFLM gives {len(want)}")
            width = np.dtype(f"u{dtype.itemsize}") if dtype.kind == "f" else dtype
            diff = np.frombuffer(got, width).astype(np.int64) - np.frombuffer(want, width).astype(np.int64)
            if tolerance and dtype.kind == "i" and int(abs(diff).max()) <= tolerance:
                continue
            raise AssertionError(f"{label} seed={seed} input #{number} output {position}: {int((diff != 0).sum())} of "
                                 f"{diff.size} values differ from TFLM (max |diff| {int(abs(diff).max())})")


def check_case(case: Case, build: Builder, tmp_path, fast_kernels: bool = False, tolerance: int | None = None,
               count: int = 6, model_bytes: bytes | None = None):
    """Convert the case (or take `model_bytes`, e.g. an edited conversion), check the model holds the ops it is
    about, build the native engine for the host and compare it with TFLM; the plan stays near the liveness bound
    and whole models compile for the M4."""
    pytest.importorskip("tensorflow")
    from tinydeploy.engine.host import HostEngine
    from tinydeploy.model.tflite import parse_tflite
    from tinydeploy.paths import firmware_dir

    model_bytes = model_bytes if model_bytes is not None else converted(case, build)
    model = parse_tflite(model_bytes)
    missing = set(case.ops) - set(model.op_names)
    assert not missing, f"{case.label} seed={case.seed}: the converter produced {model.op_names}, not {missing}"
    engine = HostEngine.build(model, tmp_path, fast_kernels=fast_kernels)
    if tolerance is None:
        tolerance = SOFTMAX_LSB if "SOFTMAX" in model.op_names else 0
    assert_matches_tflm(engine, model, count=count, seed=case.seed, label=case.label, tolerance=tolerance)
    assert engine.plan.activation_bytes <= engine.plan.lower_bound_bytes + 64 * len(model.operators)
    if len(model.operators) > 1 and shutil.which("arm-none-eabi-gcc"):  # whole models: the generated C for the M4
        result = subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, f"-I{firmware_dir() / 'include'}",
                                 f"-I{firmware_dir() / 'engine'}", "-c", str(engine.plan.model_source), "-o",
                                 str(tmp_path / "model.o")], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, result.stderr
    return model, engine


def check_kernels_case(case: Case, build: Builder, tmp_path, fast_kernels: bool):
    """check_case with the fast or the reference kernels (KERNELS); int16x8 has the reference ones only."""
    if case.int16 and fast_kernels:
        pytest.skip("int16x8 has one (reference) kernel")
    return check_case(case, build, tmp_path, fast_kernels)
