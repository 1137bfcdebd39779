"""The fast (Cortex-M4 DSP) CONV_2D, FULLY_CONNECTED, ADD and AVERAGE_POOL_2D kernels: the same outputs as TFLM
on the virtual board (where the hand-scheduled assembly runs; the host build runs their portable form), every
kernel path picked on purpose (four pixels per pass, one pixel, the reference when even the scratch of one pixel
does not fit, constant channels, exact requantization in C), no more planned RAM than the reference kernels, and
the chosen variant per layer shown by analyze."""

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


# ------------------------------------------------------------------------------------- every kernel path


def _keras_case(name: str):
    """(Keras model, input shape, the variant each listed op must get): one per path of the fast kernels."""
    import tensorflow as tf

    layers = tf.keras.layers
    if name == "pixels4-leftovers":  # 5 x 5 = 25 pixels: six passes of four, the last pixel in C
        shape = (5, 5, 8)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        outputs = layers.Conv2D(7, 3, padding="same", activation="relu", bias_initializer="random_normal")(inputs)
        return inputs, outputs, {0: "dsp 3x3 rows 4 pixels"}
    if name == "one-pixel":  # 3x3x72: four pixels' pairs (5 kB) exceed the stack, one pixel's do not
        shape = (4, 5, 72)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        outputs = layers.Conv2D(7, 3, padding="same", activation="relu", bias_initializer="random_normal")(inputs)
        return inputs, outputs, {0: "dsp 3x3 rows 1 pixel"}
    if name == "conv-reference":  # 3x3x144: not even one pixel's pairs fit: the reference kernel
        shape = (3, 3, 144)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        outputs = layers.Conv2D(5, 3, padding="same", bias_initializer="random_normal")(inputs)
        return inputs, outputs, {0: "reference (no room"}
    if name == "dense-reference":  # 1300 inputs: a row's pairs exceed the stack
        shape = (1300,)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        outputs = layers.Dense(6, bias_initializer="random_normal")(inputs)
        return inputs, outputs, {0: "reference"}
    if name == "clamped":  # outputs whose zero point is not -128 after a ReLU: the exact requantization in C
        shape = (6, 5, 4)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        x = layers.Conv2D(8, 1, activation="relu", bias_initializer="random_normal")(inputs)
        outputs = layers.Dense(5, activation="relu", bias_initializer="random_normal")(layers.Flatten()(x))
        return inputs, outputs, {0: "exact requantization in C", 2: "exact requantization in C"}
    if name == "add-pool":  # fast ADD (full range and clamped), a pool with 6 channels (one block + 2)
        shape = (6, 7, 6)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        branch = layers.Conv2D(6, 1, bias_initializer="random_normal")(inputs)
        x = layers.ReLU()(layers.Add()([inputs, branch]))
        y = layers.ReLU()(layers.Add()([x, layers.Conv2D(6, 1)(x)]))
        outputs = layers.AveragePooling2D((3, 2), strides=(2, 2), padding="same")(y)
        return inputs, outputs, {}
    if name == "pool-reference":  # a window of 16 x 17 values could overflow the int16 lanes
        shape = (16, 17, 4)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        outputs = layers.AveragePooling2D((16, 17))(inputs)
        return inputs, outputs, {0: "reference"}
    raise ValueError(name)


FAST_PATHS = ["pixels4-leftovers", "one-pixel", "conv-reference", "dense-reference", "clamped", "add-pool",
              "pool-reference"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST_PATHS)
def test_every_fast_kernel_path_matches_tflm_and_the_reference(name, tmp_path):
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    from engine_models import assert_engine_matches_tflm, convert_int8, random_int8_inputs
    from tinydeploy.engine.host import HostEngine
    from tinydeploy.model.tflite import parse_tflite

    tf.keras.utils.set_random_seed(41)
    inputs, outputs, expected = _keras_case(name)
    shape = tuple(inputs.shape[1:])
    data = convert_int8(tf.keras.Model(inputs, outputs), shape, 41)
    model = parse_tflite(data)
    if name in ("clamped", "add-pool"):  # a ReLU output whose zero point is not -128 clamps inside int8
        last = [0, len(model.operators) - 1] if name == "clamped" else [model.op_names.index("ADD")]
        data = _with_zero_points(data, {model.operators[op].outputs[0]: -100 for op in last})
        model = parse_tflite(data)
    fast = HostEngine.build(model, tmp_path / "fast", fast_kernels=True)
    for op, variant in expected.items():
        assert fast.plan.steps[op].variant.startswith(variant) or variant in fast.plan.steps[op].variant, \
            (name, fast.plan.steps[op].variant)
    if name == "add-pool":
        adds = [step for step in fast.plan.steps if step.op == "ADD"]
        assert len(adds) == 2 and adds[1].variant == "tabulated inputs"
        assert "exact requantization in C" in adds[0].variant  # clamped inside int8
        assert fast.plan.steps[-1].variant == "dsp 4 channels per word"
    reference = HostEngine.build(model, tmp_path / "reference", fast_kernels=False)
    assert fast.plan.activation_bytes <= reference.plan.activation_bytes
    assert_engine_matches_tflm(fast, data, model.tensors[model.inputs[0]].shape, count=5, seed=41, label=name)
    for value in random_int8_inputs(model.tensors[model.inputs[0]].shape, 3, 42):
        assert fast.run(value.tobytes()) == reference.run(value.tobytes())


def _with_zero_points(data: bytes, zero_points: dict[int, int]) -> bytes:
    from tflite_edit import edit_tflite

    def change(flat):
        for tensor, zero_point in zero_points.items():
            flat.subgraphs[0].tensors[tensor].quantization.zeroPoint = [zero_point]

    return edit_tflite(data, change)


def _asm_paths_model():
    """Every assembly loop of td_dot.h and the fast depthwise kernel in one model: convolutions with 4, 27, 2 and 1
    groups of inputs (each remainder of the four-group loop), 42 pixels (two left over), a depthwise 3x3
    (prescaled weights), a fast ADD, a pool, dense layers with 2 and 3 groups (both channels4 loops), and an
    all-zero channel that a padded convolution reads (kept, written as a constant)."""
    import tensorflow as tf

    from engine_models import convert_int8
    from test_prune import HIGH, _edit_channels

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(31)
    inputs = tf.keras.Input(shape=(7, 6, 16), batch_size=1)
    a = layers.Conv2D(12, 1, activation="relu", bias_initializer="random_normal")(inputs)
    b = layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer="random_normal")(a)
    c = layers.Conv2D(8, 1, activation="relu", bias_initializer="random_normal")(b)
    d = layers.Conv2D(8, 1, activation="relu")(layers.Conv2D(4, 1, activation="relu")(c))
    e = layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer="random_normal")(d)
    f = layers.ReLU()(layers.Add()([d, e]))
    g = layers.Flatten()(layers.AveragePooling2D((7, 6))(f))
    h = layers.Dense(10, activation="relu", bias_initializer="random_normal")(g)
    outputs = layers.Dense(6, bias_initializer="random_normal")(h)
    data = convert_int8(tf.keras.Model(inputs, outputs), (7, 6, 16), 31)
    # Channel 2 of the first convolution: all-zero weights, a constant the padded 3x3 convolution needs.
    return _edit_channels(data, [(0, 2, HIGH)])


@pytest.mark.slow
@pytest.mark.virtual
def test_every_assembly_path_runs_exactly_on_the_virtual_board(tmp_path):
    pytest.importorskip("tensorflow")
    from tinydeploy.boards import get_board
    from tinydeploy.flow import flash_model
    from tinydeploy.model.tflite import parse_tflite

    model = parse_tflite(_asm_paths_model())
    plan = emit_native_sources(model, tmp_path / "plan")
    variants = [step.variant for step in plan.steps]
    assert variants[:5] == ["dsp 1x1 rows 4 pixels, 1 constant channels", "dsp 3x3 rows 4 pixels"] + \
        ["dsp 1x1 rows 4 pixels"] * 3, variants
    assert any("weights widened per call" in v for v in variants) and "tabulated inputs" in variants
    assert "dsp 2x4+2 channels" in variants and "dsp 1x4+2 channels" in variants
    report = flash_model(model, get_board("virtual"), "native", tmp_path / "project", True, None, 6, 2, 0,
                         lambda message: None).to_json()
    assert report["outputs_match"] and report["golden_samples"] == 6, report["mismatched_samples"]


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
