"""Conformance of the native engine with TFLM's reference kernels (the tflite_micro host runtime).

Fast part: the four MLPerf Tiny models on seeded random inputs. Slow part: randomized single-op models (and a
few small whole models) built and converted by TensorFlow in this process, each compared on seeded random
inputs. The cases come from CONFORMANCE_SEED (env TD_CONFORMANCE_SEED to explore others); a failure prints the
case's label and seed, and `-k <label>` replays it."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

from conftest import mlperf_model
from engine_models import assert_engine_matches_tflm, convert_int8
from tinydeploy.engine.host import HostEngine
from tinydeploy.model.tflite import load_tflite, parse_tflite
from tinydeploy.paths import firmware_dir
from test_engine_native import CORTEX_M4_FLAGS

CONFORMANCE_SEED = int(os.environ.get("TD_CONFORMANCE_SEED", "20261124"))
SOFTMAX_LSB = 1  # the one op family allowed 1 LSB (LOGISTIC/TANH are exact here too, so not loosened)


# ---------------------------------------------------------------------------------------------- MLPerf Tiny


KERNELS = [pytest.param(True, id="fast"), pytest.param(False, id="reference")]


@pytest.mark.parametrize("fast_kernels", KERNELS)
@pytest.mark.parametrize("key", ["ad", "kws", "ic", "vww"])
def test_mlperf_tiny_model_matches_tflm(key, fast_kernels, tmp_path):
    model = load_tflite(mlperf_model(key))
    engine = HostEngine.build(model, tmp_path, fast_kernels=fast_kernels)
    variants = {step.variant for step in engine.plan.steps if step.op in ("CONV_2D", "FULLY_CONNECTED")}
    assert all(v.startswith("dsp") for v in variants) if fast_kernels else variants == {"reference"}
    shape = model.tensors[model.inputs[0]].shape
    tolerance = SOFTMAX_LSB if "SOFTMAX" in model.op_names else 0
    assert_engine_matches_tflm(engine, model.raw, shape, count=3, seed=97, label=key, tolerance=tolerance)
    assert engine.plan.activation_bytes <= engine.plan.lower_bound_bytes


# ---------------------------------------------------------------------------------- randomized single ops


@dataclass(frozen=True)
class Case:
    """One randomly drawn small model: `kind` names its builder, `spec` its parameters."""

    kind: str
    spec: tuple[tuple[str, object], ...]
    ops: tuple[str, ...]  # ops the converted model must contain (proves the case tests what it says)
    seed: int
    per_channel: bool = True
    float_io: bool = False

    @property
    def label(self) -> str:
        parts = "-".join(f"{k}={v}" for k, v in self.spec).replace(" ", "")
        return f"{self.kind}[{parts}]-{'pc' if self.per_channel else 'pt'}{'-float' if self.float_io else ''}"


def _image(rng, low=3, high=12, channels=6) -> tuple[int, int, int]:
    return int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)), int(rng.integers(1, channels + 1))


def _activation(rng) -> str | None:
    return [None, "relu", "relu6"][int(rng.integers(0, 3))]


def draw_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases: list[Case] = []

    def add(kind, ops, per_channel=True, float_io=False, **spec):
        cases.append(Case(kind, tuple(spec.items()), tuple(ops), int(rng.integers(0, 2 ** 31)), per_channel, float_io))

    for _ in range(16):
        shape = _image(rng)
        kernel = (int(rng.integers(1, min(shape[0], 4) + 1)), int(rng.integers(1, min(shape[1], 4) + 1)))
        dilated = bool(rng.integers(0, 4) == 0)
        stride = 1 if dilated else int(rng.integers(1, 4))
        dilation = 2 if dilated and min(shape[:2]) > 2 * max(kernel) else 1
        add("Conv2D", ["CONV_2D"], per_channel=bool(rng.integers(0, 2)), shape=shape, filters=int(rng.integers(1, 9)),
            kernel=kernel, stride=stride, dilation=dilation, padding=["same", "valid"][int(rng.integers(0, 2))],
            activation=_activation(rng), bias=bool(rng.integers(0, 4)))
    for _ in range(12):
        shape = _image(rng)
        kernel = (int(rng.integers(1, min(shape[0], 4) + 1)), int(rng.integers(1, min(shape[1], 4) + 1)))
        add("DepthwiseConv2D", ["DEPTHWISE_CONV_2D"], per_channel=bool(rng.integers(0, 2)), shape=shape,
            kernel=kernel, stride=int(rng.integers(1, 3)), multiplier=int(rng.integers(1, 3)),
            padding=["same", "valid"][int(rng.integers(0, 2))], activation=_activation(rng))
    for _ in range(8):
        add("Dense", ["FULLY_CONNECTED"], per_channel=bool(rng.integers(0, 2)), inputs=int(rng.integers(1, 48)),
            units=int(rng.integers(1, 24)), activation=_activation(rng))
    for pool, op in (("MaxPooling2D", "MAX_POOL_2D"), ("AveragePooling2D", "AVERAGE_POOL_2D")):
        for _ in range(8):
            shape = _image(rng)
            size = (int(rng.integers(1, min(shape[0], 4) + 1)), int(rng.integers(1, min(shape[1], 4) + 1)))
            add(pool, [op], shape=shape, size=size, stride=int(rng.integers(1, 4)),
                padding=["same", "valid"][int(rng.integers(0, 2))])
    for _ in range(8):
        rank = int(rng.integers(1, 4))
        add("Softmax", ["SOFTMAX"], shape=tuple(int(rng.integers(1, 12)) for _ in range(rank)),
            spread=float(rng.choice([0.3, 1.0, 4.0])))
    for _ in range(6):
        add("AddBranch", ["ADD"], shape=_image(rng), activation=[None, "relu"][int(rng.integers(0, 2))])
    for _ in range(5):
        shape = _image(rng)
        add("AddConstant", ["ADD"], shape=shape, broadcast=["channel", "row", "scalar"][int(rng.integers(0, 3))])
    for _ in range(4):
        add("MulBranch", ["MUL"], shape=_image(rng))
    for _ in range(5):
        add("MulConstant", ["MUL"], shape=_image(rng), broadcast=["channel", "row", "scalar"][int(rng.integers(0, 3))])
    for axes, keep in (((1, 2), True), ((1, 2), False), ((3,), True), ((1,), False), ((2, 3), False)):
        height, width, channels = _image(rng, channels=8)
        add("Mean", ["MEAN"], shape=(height, width, max(channels, 2)), axes=axes, keep=keep)  # no 1-wide reduction
    for _ in range(6):
        pads = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(3))
        add("Pad", ["PAD"], shape=_image(rng), pads=pads)
    for axis in (-1, 1, 2):
        add("Concatenate", ["CONCATENATION"], shape=_image(rng), axis=axis)
    for activation, op in (("sigmoid", "LOGISTIC"), ("tanh", "TANH")):
        for spread in (0.25, 0.5, 2.0, 8.0, 30.0):
            add("Activation", [op], shape=_image(rng), activation=activation, spread=spread)
    add("Dense", ["QUANTIZE", "FULLY_CONNECTED", "DEQUANTIZE"], float_io=True, inputs=17, units=5, activation="relu")
    add("Conv2D", ["QUANTIZE", "CONV_2D", "DEQUANTIZE"], float_io=True, shape=(6, 5, 2), filters=3, kernel=(3, 3),
        stride=1, dilation=1, padding="same", activation=None, bias=True)
    add("Classifier", ["CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"], shape=(16, 16, 3))
    add("Residual", ["CONV_2D", "ADD", "PAD", "CONCATENATION"], shape=(10, 10, 4))
    add("Gated", ["FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL"], inputs=12)
    # Every specialisation of the fast CONV_2D / FULLY_CONNECTED kernels: rows read straight from the input
    # (depth % 4 == 0: 1x1, SAME borders, strides, row dilation), im2col patches (depth 1 or 3, column dilation),
    # channel blocks of 4 with 1-3 left over, per-tensor scales, large depths, several FC rows, FC depth tails.
    for shape, filters, kernel, stride, dilation, padding, per_channel in (
            ((7, 6, 8), 6, (1, 1), 1, 1, "same", True), ((9, 8, 12), 5, (1, 1), 2, 1, "valid", False),
            ((8, 9, 16), 7, (3, 3), 1, 1, "same", True), ((9, 7, 8), 8, (3, 3), 2, 1, "same", False),
            ((6, 5, 4), 3, (4, 2), 1, 1, "same", True), ((9, 9, 8), 4, (3, 2), 1, 2, "same", True),
            ((4, 4, 64), 18, (3, 3), 1, 1, "same", True), ((3, 3, 128), 9, (1, 1), 1, 1, "valid", True),
            ((11, 8, 1), 9, (5, 4), 2, 1, "same", True), ((8, 8, 3), 6, (3, 3), 2, 1, "same", False),
            ((9, 9, 3), 5, (2, 3), 1, 2, "valid", True), ((6, 6, 5), 4, (2, 2), 1, 1, "same", True)):
        add("Conv2D", ["CONV_2D"], per_channel=per_channel, shape=shape, filters=filters, kernel=kernel,
            stride=stride, dilation=dilation, padding=padding, activation=_activation(rng),
            bias=bool(rng.integers(0, 4)))
    for rows, inputs, units, per_channel in ((3, 20, 9, True), (2, 13, 6, False), (4, 64, 33, True),
                                             (1, 7, 4, True), (1, 130, 5, False)):
        add("DenseRows", ["FULLY_CONNECTED"], per_channel=per_channel, rows=rows, inputs=inputs, units=units,
            activation=_activation(rng))
    return cases


CASES = draw_cases(CONFORMANCE_SEED)


def build_keras(case: Case):
    """The Keras model of a case (TensorFlow imported here)."""
    import tensorflow as tf

    layers = tf.keras.layers
    spec = dict(case.spec)
    tf.keras.utils.set_random_seed(case.seed)
    activation = {"relu6": tf.nn.relu6}.get(spec.get("activation"), spec.get("activation"))
    if case.kind == "Dense" or case.kind == "Gated":
        inputs = tf.keras.Input(shape=(spec["inputs"],), batch_size=1)
    elif case.kind == "DenseRows":
        inputs = tf.keras.Input(shape=(spec["rows"], spec["inputs"]), batch_size=1)
    else:
        inputs = tf.keras.Input(shape=spec["shape"], batch_size=1)
    x = inputs
    rng = np.random.default_rng(case.seed)
    if case.kind == "Conv2D":
        out = layers.Conv2D(spec["filters"], spec["kernel"], strides=spec["stride"], padding=spec["padding"],
                            dilation_rate=spec["dilation"], activation=activation, use_bias=spec["bias"],
                            bias_initializer="random_normal")(x)
    elif case.kind == "DepthwiseConv2D":
        out = layers.DepthwiseConv2D(spec["kernel"], strides=spec["stride"], padding=spec["padding"],
                                     depth_multiplier=spec["multiplier"], activation=activation,
                                     bias_initializer="random_normal")(x)
    elif case.kind in ("Dense", "DenseRows"):
        out = layers.Dense(spec["units"], activation=activation, bias_initializer="random_normal")(x)
    elif case.kind in ("MaxPooling2D", "AveragePooling2D"):
        out = getattr(layers, case.kind)(spec["size"], strides=spec["stride"], padding=spec["padding"])(x)
    elif case.kind == "Softmax":
        out = layers.Softmax()(x)
    elif case.kind == "AddBranch":
        branch = layers.Conv2D(spec["shape"][2], 1, bias_initializer="random_normal")(x)
        out = layers.Add()([x, branch])
        if spec["activation"]:
            out = layers.ReLU()(out)
    elif case.kind in ("AddConstant", "MulConstant"):
        h, w, c = spec["shape"]
        const_shape = {"channel": (c,), "row": (w, 1), "scalar": ()}[spec["broadcast"]]
        constant = tf.constant(rng.normal(0.5, 1.0, size=const_shape).astype(np.float32))
        op = tf.add if case.kind == "AddConstant" else tf.multiply
        out = layers.Lambda(lambda t: op(t, constant))(x)
    elif case.kind == "MulBranch":
        branch = layers.Conv2D(spec["shape"][2], 1, bias_initializer="random_normal")(x)
        out = layers.Multiply()([x, branch])
    elif case.kind == "Mean":
        out = layers.Lambda(lambda t: tf.reduce_mean(t, axis=list(spec["axes"]), keepdims=spec["keep"]))(x)
    elif case.kind == "Pad":
        pads = [[0, 0]] + [list(p) for p in spec["pads"]]
        out = layers.Lambda(lambda t: tf.pad(t, pads))(x)
    elif case.kind == "Concatenate":
        branch = layers.Conv2D(3, 1, bias_initializer="random_normal")(x)
        if spec["axis"] != -1:
            branch = layers.Conv2D(spec["shape"][2], 1)(x)
        out = layers.Concatenate(axis=spec["axis"])([x, branch])
    elif case.kind == "Activation":
        scaled = layers.Lambda(lambda t: t * spec["spread"])(x)
        out = layers.Activation(spec["activation"])(scaled)
    elif case.kind == "Classifier":
        y = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
        y = layers.MaxPooling2D(2)(y)
        y = layers.GlobalAveragePooling2D()(y)
        out = layers.Dense(5, activation="softmax")(y)
    elif case.kind == "Residual":
        y = layers.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 2], [2, 1], [0, 0]]))(x)  # asymmetric: not folded
        y = layers.Conv2D(4, (4, 4), activation="relu")(y)
        y = layers.Add()([x, y])
        out = layers.Concatenate()([y, layers.Conv2D(2, 1)(x)])
    elif case.kind == "Gated":
        gate = layers.Dense(8, activation="sigmoid")(x)
        value = layers.Dense(8, activation="tanh")(x)
        out = layers.Multiply()([gate, value])
    else:
        raise ValueError(case.kind)
    return tf.keras.Model(inputs, out), tuple(inputs.shape[1:])


_CONVERTED: dict[Case, bytes] = {}


def converted(case: Case) -> bytes:
    """The case's .tflite, converted once per session."""
    if case not in _CONVERTED:
        keras_model, input_shape = build_keras(case)
        _CONVERTED[case] = convert_int8(keras_model, input_shape, case.seed, case.per_channel, case.float_io)
    return _CONVERTED[case]


@pytest.mark.slow
@pytest.mark.parametrize("fast_kernels", KERNELS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_random_model_matches_tflm(case, fast_kernels, tmp_path):
    pytest.importorskip("tensorflow")
    model_bytes = converted(case)
    model = parse_tflite(model_bytes)
    missing = set(case.ops) - set(model.op_names)
    assert not missing, f"{case.label} seed={case.seed}: the converter produced {model.op_names}, not {missing}"
    engine = HostEngine.build(model, tmp_path, fast_kernels=fast_kernels)
    source = model.tensors[model.inputs[0]]
    tolerance = SOFTMAX_LSB if "SOFTMAX" in model.op_names else 0
    assert_engine_matches_tflm(engine, model_bytes, source.shape, count=6, seed=case.seed, label=case.label,
                               tolerance=tolerance, dtype=source.dtype)
    assert engine.plan.activation_bytes <= engine.plan.lower_bound_bytes + 64 * len(model.operators)
    if len(model.operators) > 1 and shutil.which("arm-none-eabi-gcc"):  # whole models: the generated C for the M4
        result = subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, f"-I{firmware_dir() / 'include'}",
                                 f"-I{firmware_dir() / 'engine'}", "-c", str(engine.plan.model_source), "-o",
                                 str(tmp_path / "model.o")], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("scale, zero_point", [(0.05, 3), (0.5, -100), (0.004, 0)])
def test_int8_requantize_matches_tflm(scale, zero_point, tmp_path):
    """QUANTIZE int8 -> int8 (a rescale): a float-input model whose input is edited to int8."""
    pytest.importorskip("tensorflow")
    from tflite_edit import edit_tflite
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    float_case = next(c for c in CASES if c.float_io and c.kind == "Dense")

    def to_int8_input(model):
        graph = model.subgraphs[0]
        tensor = graph.tensors[graph.inputs[0]]
        tensor.type = schema.TensorType.INT8
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale, tensor.quantization.zeroPoint = [scale], [zero_point]

    model_bytes = edit_tflite(converted(float_case), to_int8_input)
    model = parse_tflite(model_bytes)
    assert model.op_names[0] == "QUANTIZE" and model.tensors[model.inputs[0]].dtype == "int8"
    engine = HostEngine.build(model, tmp_path)
    assert_engine_matches_tflm(engine, model_bytes, model.tensors[model.inputs[0]].shape, count=6, seed=5,
                               label=f"requantize-{scale}-{zero_point}")
