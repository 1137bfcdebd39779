"""TRANSPOSE_CONV in the native engine against TFLM: int8 and int16x8, per-tensor and per-channel weights, SAME
and VALID padding, strides, filter sizes, bias absent / int32 / int64 / int16, fused activations.

Fast part: schema-written single-op models. Slow part: Keras Conv2DTranspose layers converted by TensorFlow (int8
and 16x8). Cases come from TD_CONFORMANCE_SEED; a failure names the case."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pytest

from single_op_models import GraphSpec, OpSpec, TensorSpec, build_model, float32, options, random_int
from stateful_conformance import assert_invokes_match_tflm, random_inputs
from tinydeploy.engine.host import HostEngine
from tinydeploy.model.tflite import parse_tflite

SEED = int(os.environ.get("TD_CONFORMANCE_SEED", "20261124"))
ACTIVATIONS = {"none": 0, "relu": 1, "relu6": 3}
INPUT_STD = {"int8": 74.0, "int16": 18918.0}
OUTPUT_STD = {"int8": 40.0, "int16": 8000.0}


@dataclass(frozen=True)
class TransposeConvCase:
    dtype: str
    shape: tuple[int, int, int]  # input height, width, depth
    filters: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: str
    per_channel: bool
    bias: str  # "none", "int32", "int64", "int16"
    activation: str
    seed: int

    @property
    def label(self) -> str:
        return (f"tconv-{self.dtype}-{'x'.join(map(str, self.shape))}-f{self.filters}"
                f"-k{self.kernel[0]}x{self.kernel[1]}"
                f"-s{self.stride[0]}x{self.stride[1]}-{self.padding}-{'pc' if self.per_channel else 'pt'}"
                f"-bias_{self.bias}-{self.activation}-seed{self.seed}")


def draw_cases(seed: int) -> list[TransposeConvCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for dtype, biases in (("int8", ("int32", "none")), ("int16", ("int64", "int16", "none"))):
        for number in range(6):
            shape = (int(rng.integers(1, 7)), int(rng.integers(1, 7)), int(rng.integers(1, 5)))
            cases.append(TransposeConvCase(
                dtype, shape, int(rng.integers(1, 6)), (int(rng.integers(1, 5)), int(rng.integers(1, 5))),
                (int(rng.integers(1, 4)), int(rng.integers(1, 4))), ["SAME", "VALID"][number % 2],
                bool(rng.integers(0, 2)), biases[number % len(biases)], list(ACTIVATIONS)[number % 3],
                int(rng.integers(0, 2 ** 31))))
    return cases


CASES = draw_cases(SEED)


def transpose_conv_model(case: TransposeConvCase) -> bytes:
    rng = np.random.default_rng(case.seed)
    wide = case.dtype == "int16"
    height, width, depth = case.shape
    if case.padding == "SAME":
        out_h, out_w = height * case.stride[0], width * case.stride[1]
    else:
        out_h = (height - 1) * case.stride[0] + case.kernel[0]
        out_w = (width - 1) * case.stride[1] + case.kernel[1]
    input_scale = float32(1.0 / 4096 if wide else 0.03)
    scales = rng.uniform(0.5, 2.0, size=case.filters if case.per_channel else 1) * 0.01
    taps = depth * math.ceil(case.kernel[0] / case.stride[0]) * math.ceil(case.kernel[1] / case.stride[1])
    output_scale = float32(input_scale * float(scales.mean()) * INPUT_STD[case.dtype] * 74.0 * math.sqrt(taps)
                           / OUTPUT_STD[case.dtype])
    zero_point = 0 if wide else int(rng.integers(-20, 21))
    weights = TensorSpec("weights", (case.filters, *case.kernel, depth), "int8", None, 0,
                         random_int(rng, "int8", (case.filters, *case.kernel, depth), -127, 127))
    tensors = [
        TensorSpec("output_shape", (4,), "int32", data=np.array([1, out_h, out_w, case.filters], np.int32)),
        weights,
        TensorSpec("input", (1, height, width, depth), case.dtype, input_scale, zero_point),
        TensorSpec("output", (1, out_h, out_w, case.filters), case.dtype, output_scale,
                   0 if wide else int(rng.integers(-20, 21))),
    ]
    inputs = [0, 1, 2]
    if case.bias != "none":
        bias_scale = input_scale * scales
        real = rng.normal(0.0, 0.3 * output_scale * OUTPUT_STD[case.dtype], size=case.filters)
        values = np.round(real / np.resize(bias_scale, case.filters))
        if case.bias == "int16":
            values = np.clip(values, -32768, 32767)
        tensors.append(TensorSpec("bias", (case.filters,), case.bias, None, 0, values.astype(case.bias)))
        inputs.append(4)
    model = build_model(GraphSpec(tensors, [OpSpec(
        "TRANSPOSE_CONV", inputs, [3], "TransposeConvOptions",
        options("TransposeConvOptionsT", padding=0 if case.padding == "SAME" else 1, strideH=case.stride[0],
                strideW=case.stride[1], fusedActivationFunction=ACTIVATIONS[case.activation]))],
        inputs=[2], outputs=[3]))
    return _with_weight_scales(model, scales)


def _with_weight_scales(model: bytes, scales: np.ndarray) -> bytes:
    """Per-channel (axis 0) or per-tensor weight quantization, set on the built file."""
    from tflite_edit import edit_tflite
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def set_scales(flatbuffer):
        tensor = flatbuffer.subgraphs[0].tensors[1]
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale = [float32(s) for s in scales]
        tensor.quantization.zeroPoint = [0] * len(scales)
        tensor.quantization.quantizedDimension = 0

    return edit_tflite(model, set_scales)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_schema_transpose_conv_matches_tflm(case, tmp_path):
    model = parse_tflite(transpose_conv_model(case))
    engine = HostEngine.build(model, tmp_path)
    output = model.tensors[model.outputs[0]]
    assert_invokes_match_tflm(engine, model, random_inputs(model, 3, case.seed), case.label,
                              min_distinct=min(6, output.elements))


# ---------------------------------------------------------------------- Keras Conv2DTranspose, converted


KERAS_CASES = [("int8", "same", "relu", (2, 2)), ("int8", "valid", None, (2, 1)), ("int16", "same", None, (2, 2)),
               ("int16", "valid", "relu", (1, 2))]


def keras_transpose_conv(dtype: str, padding: str, activation: str | None, strides, seed: int) -> bytes:
    tf = pytest.importorskip("tensorflow")
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    shape = (5, 4, 3)
    inputs = tf.keras.Input(shape=shape, batch_size=1)
    outputs = tf.keras.layers.Conv2DTranspose(4, (3, 2), strides=strides, padding=padding, activation=activation,
                                              bias_initializer="random_normal")(inputs)

    def representative():
        for _ in range(16):
            yield [rng.normal(0.0, 1.0, size=(1, *shape)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inputs, outputs))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    if dtype == "int16":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return bytes(converter.convert())


@pytest.mark.slow
@pytest.mark.parametrize("dtype, padding, activation, strides", KERAS_CASES,
                         ids=[f"{d}-{p}-{a}-s{s[0]}x{s[1]}" for d, p, a, s in KERAS_CASES])
def test_keras_transpose_conv_matches_tflm(dtype, padding, activation, strides, tmp_path):
    model = parse_tflite(keras_transpose_conv(dtype, padding, activation, strides, SEED % 1000))
    assert model.op_names == ["TRANSPOSE_CONV"], model.op_names
    engine = HostEngine.build(model, tmp_path)
    assert_invokes_match_tflm(engine, model, random_inputs(model, 3, SEED), f"Conv2DTranspose {dtype} {padding}",
                              min_distinct=6)
