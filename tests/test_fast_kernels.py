"""The fast (Cortex-M4 DSP) CONV_2D and FULLY_CONNECTED kernels: the same outputs as TFLM on the virtual board
(where the hand-scheduled assembly runs; the host build runs their portable form), no more RAM than the
reference kernels, and the chosen variant per layer shown by analyze."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import mlperf_model, run_cli
from tinydeploy.engine import emit_native_sources
from tinydeploy.model.tflite import load_tflite

MLPERF_KEYS = ["ad", "kws", "ic", "vww"]
# The reference plans measured by bench/memory.py before the fast kernels existed (bytes).
REFERENCE_ACTIVATION_BYTES = {"kws": 10_092, "vww": 46_080, "ic": 33_312, "ad": 768}


@pytest.mark.parametrize("key", MLPERF_KEYS)
def test_fast_plan_needs_no_more_activation_memory_than_the_reference(key, tmp_path):
    model = load_tflite(mlperf_model(key))
    fast = emit_native_sources(model, tmp_path / "fast", fast_kernels=True)
    reference = emit_native_sources(model, tmp_path / "reference", fast_kernels=False)
    assert fast.activation_bytes <= reference.activation_bytes <= REFERENCE_ACTIVATION_BYTES[key]
    # Their scratch goes only where no block live at their op lies (else on their own stack).
    from tinydeploy.engine import plan_native

    _, memory = plan_native(model, True)
    assert memory.scratch == fast.scratch
    for op, (offset, size) in memory.scratch.items():
        assert offset % 4 == 0 and offset + size <= memory.activation_bytes
        for block in memory.blocks:
            if block.key == ("scratch", op) or not block.first <= op <= block.last:
                continue
            start = memory.scratch[block.key[1]][0] if isinstance(block.key, tuple) else memory.offsets[block.key]
            assert start + block.nbytes <= offset or offset + size <= start, (op, block)
    chosen = {step.op: step.variant for step in fast.steps if step.op in ("CONV_2D", "FULLY_CONNECTED")}
    assert chosen and all(variant.startswith("dsp") for variant in chosen.values())
    names = {path.name for path in fast.kernel_sources}
    assert "td_dot.h" in names and ("conv_2d_fast.c" in names or "fully_connected_fast.c" in names)


def test_analyze_shows_the_kernel_variant_of_every_layer(tmp_path):
    from tinydeploy.engine import describe_plan

    rows = describe_plan(emit_native_sources(load_tflite(mlperf_model("ic")), tmp_path))
    variants = [row["variant"] for row in rows if row["op"] == "CONV_2D"]
    assert {"dsp 3x3 rows 4 pixels", "dsp 1x1 rows 4 pixels", "dsp 3x3 im2col 4 pixels"} <= set(variants)
    assert {row["variant"] for row in rows if row["op"] == "ADD"} == {"tabulated inputs"}
    table = run_cli("analyze", mlperf_model("ic"), "--engine", "native")
    assert table.returncode == 0, table.stderr[-2000:]
    assert "variant" in table.stdout and "dsp 3x3 rows 4 pixels" in table.stdout


@pytest.mark.virtual
@pytest.mark.slow
@pytest.mark.parametrize("key", MLPERF_KEYS)
def test_mlperf_model_with_fast_kernels_matches_tflm_on_the_virtual_board(key, tmp_path):
    result = run_cli("flash", mlperf_model(key), "--board", "virtual", "--out", tmp_path / key, "--json",
                     "--runs", "2", "--samples", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["outputs_match"] is True and report["golden_samples"] == 3
    assert report["activation_bytes"] <= REFERENCE_ACTIVATION_BYTES[key]
    # Emulated instructions: latency in virtual time over the 16 ns each instruction takes (-icount shift=4).
    assert report["instructions"] == report["latency_us"] * 1000 // 16
    project = tmp_path / key
    assert any(project.rglob("conv_2d_fast.c")) or any(project.rglob("fully_connected_fast.c"))


def _folded_output(acc: int, record, output_offset: int) -> int:
    """td_dot.h's folded requantization on one accumulator (bias included), every intermediate checked to fit
    int32 as the generator's proof promises."""
    a = acc << record.up
    assert -(1 << 31) <= a < (1 << 31)
    c = record.round(output_offset) + (-1 if a < 0 else 0)
    t = c + ((a * record.multiplier + (1 << 31)) >> 32)
    assert -(1 << 31) <= t < (1 << 31)
    return min(max(t >> record.right, -128), 127)


def test_folded_requantization_equals_the_reference_for_every_reachable_sum():
    from tinydeploy.engine.ops.common import ChannelRequant, folding_proven, requantize
    from tinydeploy.engine.quant import quantize_multiplier

    rng = np.random.default_rng(7)
    channels, inputs, input_offset, output_offset = 8, 24, 5, -17
    weights = rng.integers(-127, 128, size=(channels, inputs))
    biases = rng.integers(-20000, 20000, size=channels)
    pairs = [quantize_multiplier(float(s)) for s in rng.uniform(1e-4, 0.45, size=channels)]
    records = [ChannelRequant(int(b), m, max(s, 0) + 1, max(-s, 0)) for b, (m, s) in zip(biases, pairs)]
    assert folding_proven(records, np.abs(weights).sum(axis=1), input_offset, output_offset, (-128, 127))
    x = rng.integers(-128, 128, size=(400, inputs))
    x[:2] = np.where(weights[0] > 0, 127, -128), np.where(weights[0] > 0, -128, 127)  # the extreme sums
    sums = (x + input_offset) @ weights.T + biases
    for channel, record in enumerate(records):
        for acc in sums[:, channel]:
            expected = min(max(requantize(int(acc), record.multiplier, record.shift) + output_offset, -128), 127)
            assert _folded_output(int(acc), record, output_offset) == expected


def test_folded_requantization_is_refused_when_it_could_differ():
    from tinydeploy.engine.ops.common import ChannelRequant, folding_proven

    sums = np.full(4, 127 * 16)
    records = [ChannelRequant(0, 1 << 30, 1, 3)] * 4
    assert folding_proven(records, sums, 0, 0, (-128, 127))
    assert not folding_proven(records, sums, 0, 0, (0, 127))  # a clamp SSAT cannot do
    assert not folding_proven([ChannelRequant(1 << 30, 1 << 30, 1, 3)] * 4, sums, 0, 0, (-128, 127))  # overflow
    assert not folding_proven([ChannelRequant(0, 1 << 30, 1, 0)] * 4, sums, 0, 0, (-128, 127))  # no right shift
    skip = np.array([True, False, False, False])
    assert folding_proven([ChannelRequant(1 << 30, 1 << 30, 1, 0)] + records[1:], sums, 0, 0, (-128, 127), skip)


@pytest.mark.slow
@pytest.mark.virtual
def test_folded_requantization_paths_run_exactly_on_the_virtual_board(tmp_path):
    """The assembly with folded requantization where the mlperf models do not reach it: a strided pointwise
    layer, channels beyond the last block of four (after the assembly, one at a time), several filter rows per
    pixel (the C form) and a dense layer."""
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    from engine_models import convert_int8
    from tinydeploy.boards import get_board
    from tinydeploy.flow import flash_model
    from tinydeploy.model.tflite import parse_tflite

    tf.keras.utils.set_random_seed(31)
    inputs = tf.keras.Input(shape=(7, 6, 8), batch_size=1)
    hidden = tf.keras.layers.Conv2D(12, 1, strides=2, activation="relu", bias_initializer="random_normal")(inputs)
    hidden = tf.keras.layers.Conv2D(8, 3, padding="same", bias_initializer="random_normal")(hidden)
    hidden = tf.keras.layers.Conv2D(6, 1, activation="relu", bias_initializer="random_normal")(hidden)
    outputs = tf.keras.layers.Dense(10, bias_initializer="random_normal")(tf.keras.layers.Flatten()(hidden))
    model = parse_tflite(convert_int8(tf.keras.Model(inputs, outputs), (7, 6, 8), 31))
    assert [op for op in model.op_names if op != "RESHAPE"] == ["CONV_2D"] * 3 + ["FULLY_CONNECTED"]
    report = flash_model(model, get_board("virtual"), "native", tmp_path / "project", True, None, 5, 2, 0,
                         lambda message: None).to_json()
    assert report["outputs_match"] and report["golden_samples"] == 5, report["mismatched_samples"]
    source = next((tmp_path / "project").rglob("td_model_native.c")).read_text()
    assert source.count("_folded[") >= 3  # the folded tables were emitted, so the assembly ran


def test_generate_kernels_option_switches_every_layer_between_fast_and_reference(tmp_path):
    model = mlperf_model("kws")
    sources = {}
    for kernels in ("fast", "reference"):
        result = run_cli("generate", model, "--board", "virtual", "--engine", "native", "--kernels", kernels,
                         "-o", tmp_path / kernels)
        assert result.returncode == 0, result.stderr
        sources[kernels] = (tmp_path / kernels / "src" / "td_model_native.c").read_text()
    assert "td_conv_2d_fast" in sources["fast"] and "td_depthwise_conv_2d_fast" in sources["fast"]
    assert "td_conv_2d_s8(" in sources["reference"] and "_fast" not in sources["reference"]
    assert list((tmp_path / "fast").rglob("conv_2d_fast.c")) and not list((tmp_path / "reference").rglob("*_fast.c"))
    bad = run_cli("generate", model, "--engine", "native", "--kernels", "turbo", "-o", tmp_path / "bad")
    assert bad.returncode == 2 and bad.stderr.count("error:") == 1 and "turbo" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad").exists()
