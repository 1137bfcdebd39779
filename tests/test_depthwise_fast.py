"""The fast DEPTHWISE_CONV_2D kernel (depthwise_conv_2d_fast.c): byte for byte equal to TFLM and to the reference
kernel on randomized single-op models covering each of its paths, compiled for the Cortex-M4, run on the
virtual board once (the host build runs the portable C of td_simd.h; only the board runs the DSP instructions)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

from engine_models import assert_engine_matches_tflm, convert_int8, random_int8_inputs
from tinydeploy.engine.host import HostEngine
from tinydeploy.model.tflite import parse_tflite
from tinydeploy.paths import firmware_dir
from test_engine_native import CORTEX_M4_FLAGS


@dataclass(frozen=True)
class DepthwiseCase:
    """One DEPTHWISE_CONV_2D layer; input_zero_point rewrites the converted input's zero point (None: keep)."""

    shape: tuple[int, int, int]
    kernel: tuple[int, int] = (3, 3)
    stride: int = 1
    dilation: int = 1
    multiplier: int = 1
    padding: str = "same"
    activation: str | None = "relu"
    per_channel: bool = True
    input_zero_point: int | None = None
    seed: int = 0

    @property
    def label(self) -> str:
        return (f"{'x'.join(map(str, self.shape))}-k{self.kernel[0]}x{self.kernel[1]}-s{self.stride}"
                f"-d{self.dilation}-m{self.multiplier}-{self.padding}-{self.activation or 'none'}"
                f"-{'pc' if self.per_channel else 'pt'}-zp{self.input_zero_point}")


CASES = [
    DepthwiseCase((25, 5, 64), seed=1),  # KWS-shaped: 3x3 table path, 16 blocks, borders
    DepthwiseCase((9, 8, 16), stride=2, seed=2),  # VWW-like stride 2, SAME on an even size
    DepthwiseCase((7, 6, 7), activation="relu6", seed=3),  # one block + 3 single channels, clamped output
    DepthwiseCase((6, 7, 6), padding="valid", activation=None, per_channel=False, seed=4),
    DepthwiseCase((10, 9, 8), dilation=2, seed=5),  # dilated 3x3: table path with dilation
    DepthwiseCase((8, 8, 5), kernel=(2, 3), stride=2, seed=6),  # other filters: clipped loop nest
    DepthwiseCase((9, 9, 4), kernel=(5, 5), padding="valid", activation="relu6", seed=7),
    DepthwiseCase((6, 5, 3), multiplier=2, seed=8),  # depth multiplier 2: every channel alone
    DepthwiseCase((5, 6, 4), multiplier=2, stride=2, padding="valid", per_channel=False, seed=9),
    DepthwiseCase((1, 1, 12), seed=10),  # a 1-pixel map: every tap but the centre in the padding
    DepthwiseCase((1, 3, 8), kernel=(3, 3), stride=2, seed=11),
    DepthwiseCase((8, 6, 12), input_zero_point=-128, seed=12),  # the ReLU'd inputs of KWS and VWW
    DepthwiseCase((8, 6, 10), input_zero_point=101, activation="relu6", seed=13),
    DepthwiseCase((7, 7, 8), kernel=(3, 3), input_zero_point=-37, activation=None, per_channel=False, seed=14),
    DepthwiseCase((9, 8, 8), stride=2, activation="relu6", seed=15),  # runs of inner pixels, clamped, stride 2
    DepthwiseCase((6, 9, 12), dilation=2, input_zero_point=-128, seed=16),  # runs with dilation
]


def depthwise_model(case: DepthwiseCase) -> bytes:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(case.seed)
    activation = {"relu6": tf.nn.relu6}.get(case.activation, case.activation)
    inputs = tf.keras.Input(shape=case.shape, batch_size=1)
    outputs = tf.keras.layers.DepthwiseConv2D(case.kernel, strides=case.stride, padding=case.padding,
                                              dilation_rate=case.dilation, depth_multiplier=case.multiplier,
                                              activation=activation, bias_initializer="random_normal")(inputs)
    data = convert_int8(tf.keras.Model(inputs, outputs), case.shape, case.seed, case.per_channel)
    if case.input_zero_point is not None:
        data = with_input_zero_point(data, case.input_zero_point)
    return data


def with_input_zero_point(data: bytes, zero_point: int) -> bytes:
    from tflite_edit import edit_tflite

    def change(model):
        graph = model.subgraphs[0]
        graph.tensors[graph.inputs[0]].quantization.zeroPoint = [zero_point]

    return edit_tflite(data, change)


_MODELS: dict[DepthwiseCase, bytes] = {}


def converted(case: DepthwiseCase) -> bytes:
    if case not in _MODELS:
        _MODELS[case] = depthwise_model(case)
    return _MODELS[case]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_fast_depthwise_matches_tflm_and_the_reference(case, tmp_path):
    pytest.importorskip("tensorflow")
    data = converted(case)
    model = parse_tflite(data)
    assert model.op_names == ["DEPTHWISE_CONV_2D"], model.op_names
    source = model.tensors[model.inputs[0]]
    if case.input_zero_point is not None:
        assert source.quant.zero_points[0] == case.input_zero_point
    fast = HostEngine.build(model, tmp_path / "fast", fast_kernels=True)
    reference = HostEngine.build(model, tmp_path / "reference", fast_kernels=False)
    assert fast.plan.steps[0].kernel == "depthwise_conv_2d_fast" and fast.plan.steps[0].variant.startswith("dsp")
    assert reference.plan.steps[0].kernel == "depthwise_conv_2d"
    assert fast.activation_bytes == reference.activation_bytes  # the fast kernel costs no RAM
    assert_engine_matches_tflm(fast, data, source.shape, count=4, seed=case.seed, label=case.label)
    for number, value in enumerate(random_int8_inputs(source.shape, 4, case.seed + 1000)):
        assert fast.run(value.tobytes()) == reference.run(value.tobytes()), f"{case.label} input #{number}"


@pytest.mark.slow
def test_sums_too_wide_for_the_folded_arithmetic_use_the_exact_requantization(tmp_path):
    """A bias near 2^31 could overflow the folded requantization's shifted sums: the generator must keep the
    reference's requantization (in C) and the outputs must still equal the reference kernel's."""
    pytest.importorskip("tensorflow")
    from tflite_edit import edit_tflite

    data = converted(CASES[2])
    model = parse_tflite(data)
    bias_tensor = model.operators[0].inputs[2]

    def huge_bias(flat):
        buffer = flat.buffers[flat.subgraphs[0].tensors[bias_tensor].buffer]
        values = np.frombuffer(bytes(buffer.data), dtype="<i4").copy()
        values[0] = (1 << 31) - 100
        buffer.data = list(values.tobytes())

    edited = parse_tflite(edit_tflite(data, huge_bias))
    engine = HostEngine.build(edited, tmp_path / "fast", fast_kernels=True)
    assert engine.plan.steps[0].kernel == "depthwise_conv_2d_fast"
    assert "exact requantization" in engine.plan.steps[0].variant
    reference = HostEngine.build(edited, tmp_path / "reference", fast_kernels=False)
    for value in random_int8_inputs(edited.tensors[edited.inputs[0]].shape, 4, 3):
        assert engine.run(value.tobytes()) == reference.run(value.tobytes())


@pytest.mark.parametrize("optimization", ["-O2", "-Os"])
def test_fast_kernel_compiles_for_cortex_m4_without_warnings(optimization, tmp_path):
    if not shutil.which("arm-none-eabi-gcc"):
        pytest.skip("arm-none-eabi-gcc is not installed")
    flags = [flag for flag in CORTEX_M4_FLAGS if not flag.startswith("-O")] + [optimization]
    source = firmware_dir() / "engine" / "depthwise_conv_2d_fast.c"
    result = subprocess.run(["arm-none-eabi-gcc", *flags, f"-I{firmware_dir() / 'engine'}", "-c", str(source), "-o",
                             str(tmp_path / "depthwise_conv_2d_fast.o")], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, result.stderr
    disassembly = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "depthwise_conv_2d_fast.o")],
                                 capture_output=True, text=True).stdout
    for instruction in ("sxtb16", "smlabb", "smlatt", "smmlar", "ssat", "ldrd"):  # the DSP paths, not portable C
        assert instruction in disassembly, instruction


@pytest.mark.slow
@pytest.mark.virtual
def test_fast_depthwise_layers_run_exactly_on_the_virtual_board(tmp_path):
    """Three stacked layers reach every path with the DSP instructions: 3x3 with int8 weights widened per tap (126
    channels: the prescaled weights would not fit the stack), 3x3 with the exact requantization (an output zero
    point that makes ReLU clamp inside int8) and the last 2 channels one at a time, and a 2x2 window (C)."""
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    from tflite_edit import edit_tflite
    from tinydeploy.boards import get_board
    from tinydeploy.engine import emit_native_sources
    from tinydeploy.flow import flash_model

    tf.keras.utils.set_random_seed(21)
    inputs = tf.keras.Input(shape=(6, 5, 126), batch_size=1)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer="random_normal")(inputs)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer="random_normal")(x)
    outputs = tf.keras.layers.DepthwiseConv2D(2, strides=2, padding="same", bias_initializer="random_normal")(x)
    data = convert_int8(tf.keras.Model(inputs, outputs), (6, 5, 126), 21)
    second = parse_tflite(data).operators[1].outputs[0]

    def clamp_inside(flat):
        flat.subgraphs[0].tensors[second].quantization.zeroPoint = [-100]

    model = parse_tflite(edit_tflite(data, clamp_inside))
    assert model.op_names == ["DEPTHWISE_CONV_2D"] * 3
    variants = [step.variant for step in emit_native_sources(model, tmp_path / "plan").steps]
    assert variants == ["dsp 3x3 4 channels per word, last 2 one at a time",
                        "dsp 3x3 4 channels per word, last 2 one at a time, exact requantization in C",
                        "dsp 2x2 4 channels per word, last 2 one at a time"], variants
    report = flash_model(model, get_board("virtual"), "native", tmp_path / "project", True, None, 5, 2, 0,
                         lambda message: None).to_json()
    assert report["outputs_match"] and report["golden_samples"] == 5, report["mismatched_samples"]
