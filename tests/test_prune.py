"""Exact channel pruning (tinydeploy/engine/prune.py): channels whose weights are all zero, and what follows from
them, are not computed, and the outputs stay byte for byte TFLM's. Models are converted by TensorFlow, then edited
so that chosen channels have all-zero weights and biases that make their constant the zero point or not; the
padding cases check that a channel is kept where removing it would change the border outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import mlperf_model, run_cli
from engine_models import assert_engine_matches_tflm, convert_int8, random_int8_inputs
from tinydeploy.engine import emit_native_sources
from tinydeploy.engine.host import HostEngine
from tinydeploy.engine.prune import prune_channels
from tinydeploy.model.tflite import load_tflite, parse_tflite

LOW, HIGH = -(1 << 24), 1 << 24  # biases that saturate a ReLU'd output to its zero point / to 127


def test_vww_loses_the_channels_its_zero_weights_make_useless():
    model = load_tflite(mlperf_model("vww"))
    pruned, report = prune_channels(model)
    zero_channels = 0
    for op in model.operators:
        if op.op == "CONV_2D":
            weights = model.tensors[op.inputs[1]].values()
            zero_channels += int((np.abs(weights.reshape(weights.shape[0], -1)).sum(axis=1) == 0).sum())
    assert zero_channels == 971
    removed = {entry.op_index: entry for entry in report.ops}
    # Every pointwise convolution loses at least its all-zero output channels; the depthwise layers after them the
    # same channels; the average pool and the dense layer at the end follow.
    for op in model.operators:
        if op.op == "CONV_2D":
            weights = model.tensors[op.inputs[1]].values()
            zeros = int((np.abs(weights.reshape(weights.shape[0], -1)).sum(axis=1) == 0).sum())
            assert (removed[op.index].output_channels_removed if op.index in removed else 0) >= zeros
    assert removed[29].op == "FULLY_CONNECTED" and removed[29].input_channels_removed > 200
    assert report.channels_removed >= 971 and report.macs_removed > 3_000_000 and report.bytes_removed > 150_000
    # The rewritten graph is consistent: shapes follow the channels kept, inputs and outputs untouched.
    for op in pruned.operators:
        if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            weights = pruned.tensors[op.inputs[1]]
            channels = weights.shape[3] if op.op == "DEPTHWISE_CONV_2D" else weights.shape[0]
            assert pruned.tensors[op.outputs[0]].shape[-1] == channels == pruned.tensors[op.inputs[2]].elements
            assert len(weights.quant.scales) in (1, channels)
    for index in (*model.inputs, *model.outputs):
        assert pruned.tensors[index].shape == model.tensors[index].shape


def test_models_without_zero_channels_are_left_alone():
    for key in ("kws", "ic", "ad"):
        model = load_tflite(mlperf_model(key))
        pruned, report = prune_channels(model)
        assert pruned is model and not report.ops


def test_analyze_reports_what_pruning_removed(tmp_path):
    result = run_cli("analyze", mlperf_model("vww"), "--engine", "native", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    summary = data["native_pruning"]
    assert summary["channels_removed"] >= 971 and summary["macs_removed"] > 3_000_000
    by_op = {row["op_index"]: row["pruned"] for row in data["native_steps"]}
    assert by_op[14]["output_channels_removed"] >= 71 and by_op[14]["macs_removed"] > 0
    assert by_op[0] is None  # the first convolution has no zero channel
    table = run_cli("analyze", mlperf_model("vww"), "--engine", "native")
    assert table.returncode == 0 and "exact graph optimization" in table.stdout and "pruned" in table.stdout
    # The reference build (the oracle) runs the graph as written.
    plan = emit_native_sources(load_tflite(mlperf_model("vww")), tmp_path, fast_kernels=False)
    assert plan.pruning is None


# ------------------------------------------------------------------------------------------- edited models


def _edit_channels(data: bytes, edits: list[tuple[int, int, int]], columns: list[tuple[int, int]] = ()) -> bytes:
    """edits: (op index, output channel, bias) -> that channel's weights zeroed, its bias set; columns: (op index,
    input channel) -> that input channel's weights zeroed (a channel the op ignores)."""
    from tflite_edit import edit_tflite

    def change(flat):
        graph = flat.subgraphs[0]

        def array(tensor_index: int, dtype: str) -> tuple[np.ndarray, object]:
            tensor = graph.tensors[tensor_index]
            buffer = flat.buffers[tensor.buffer]
            return np.frombuffer(bytes(buffer.data), dtype=dtype).reshape(tensor.shape).copy(), buffer

        for op_index, channel, bias in edits:
            op = graph.operators[op_index]
            weights, buffer = array(op.inputs[1], "i1")
            depthwise = weights.ndim == 4 and weights.shape[0] == 1
            if depthwise:
                weights[..., channel] = 0
            else:
                weights[channel] = 0
            buffer.data = list(weights.astype("i1").tobytes())
            bias_type = {2: "<i4", 4: "<i8"}[graph.tensors[op.inputs[2]].type]  # int16x8 layers: int64 biases
            biases, bias_buffer = array(op.inputs[2], bias_type)
            biases[channel] = bias
            bias_buffer.data = list(biases.astype(bias_type).tobytes())
        for op_index, channel in columns:
            op = graph.operators[op_index]
            weights, buffer = array(op.inputs[1], "i1")
            weights[..., channel] = 0
            buffer.data = list(weights.astype("i1").tobytes())

    return edit_tflite(data, change)


_CONVERTED: dict[str, bytes] = {}


def _padded_model() -> bytes:
    """1x1 conv -> depthwise 3x3 SAME -> conv 3x3 SAME -> average pool over the map -> dense."""
    if "padded" not in _CONVERTED:
        import tensorflow as tf

        tf.keras.utils.set_random_seed(11)
        layers = tf.keras.layers
        inputs = tf.keras.Input(shape=(9, 8, 4), batch_size=1)
        x = layers.Conv2D(8, 1, activation="relu", bias_initializer="random_normal")(inputs)
        x = layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer="random_normal")(x)
        x = layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer="random_normal")(x)
        x = layers.Flatten()(layers.AveragePooling2D((9, 8))(x))  # AVERAGE_POOL_2D (global pooling is MEAN)
        outputs = layers.Dense(5, bias_initializer="random_normal")(x)
        _CONVERTED["padded"] = convert_int8(tf.keras.Model(inputs, outputs), (9, 8, 4), 11)
    return _CONVERTED["padded"]


def _dense_model() -> bytes:
    if "dense" not in _CONVERTED:
        import tensorflow as tf

        tf.keras.utils.set_random_seed(12)
        layers = tf.keras.layers
        inputs = tf.keras.Input(shape=(24,), batch_size=1)
        x = layers.Dense(12, activation="relu", bias_initializer="random_normal")(inputs)
        x = layers.Dense(10, activation="relu", bias_initializer="random_normal")(x)
        outputs = layers.Dense(3, bias_initializer="random_normal")(x)
        _CONVERTED["dense"] = convert_int8(tf.keras.Model(inputs, outputs), (24,), 12)
    return _CONVERTED["dense"]


def _check_exact(data: bytes, tmp_path, label: str) -> HostEngine:
    model = parse_tflite(data)
    fast = HostEngine.build(model, tmp_path / "fast", fast_kernels=True)
    reference = HostEngine.build(model, tmp_path / "reference", fast_kernels=False)
    shape = model.tensors[model.inputs[0]].shape
    assert_engine_matches_tflm(fast, data, shape, count=8, seed=5, label=label)
    for value in random_int8_inputs(shape, 4, 6):
        assert fast.run(value.tobytes()) == reference.run(value.tobytes())
    return fast


@pytest.mark.slow
def test_zero_channels_before_padding_are_kept_exactly_where_padding_needs_them(tmp_path):
    """conv0 channel 1 and conv2 channel 3 are the zero point (removed through the depthwise layer and the pool);
    conv0 channel 2 is another constant, which the padded depthwise layer turns into border-dependent values (kept,
    written as a constant by the fast kernel); conv2 channel 5 is a constant other than the zero point, folded into
    the dense layer's bias; conv2 ignores depthwise channel 6 (removed back to conv0)."""
    pytest.importorskip("tensorflow")
    data = _padded_model()
    assert parse_tflite(data).op_names[:4] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "AVERAGE_POOL_2D"]
    edited = _edit_channels(data, [(0, 1, LOW), (1, 1, LOW), (0, 2, HIGH), (2, 3, LOW), (2, 5, HIGH)],
                            columns=[(2, 6)])
    engine = _check_exact(edited, tmp_path, "padded")
    report = engine.plan.pruning
    removed = {entry.op_index: entry for entry in report.ops}
    assert removed[0].output_channels_removed == 2  # channels 1 and 6; channel 2 stays for the padding
    assert removed[1].output_channels_removed == 2 and removed[2].input_channels_removed == 2
    assert removed[2].output_channels_removed == 2  # channels 3 and 5
    dense = next(entry for entry in report.ops if entry.op == "FULLY_CONNECTED")
    assert dense.input_channels_removed == 2 and dense.input_channels_folded == 1
    assert report.macs_removed > 0 and report.bytes_removed > 0
    assert "1 constant channels" in engine.plan.steps[0].variant  # channel 2: zero weights, computed as a constant


@pytest.mark.slow
def test_zero_channels_of_dense_layers_fold_into_the_next_bias(tmp_path):
    pytest.importorskip("tensorflow")
    edited = _edit_channels(_dense_model(), [(0, 0, HIGH), (0, 4, LOW), (1, 2, HIGH), (1, 7, LOW)])
    engine = _check_exact(edited, tmp_path, "dense")
    removed = {entry.op_index: entry for entry in engine.plan.pruning.ops}
    assert removed[0].output_channels_removed == 2 and removed[1].input_channels_removed == 2
    assert removed[1].input_channels_folded == 1 and removed[1].output_channels_removed == 2
    assert removed[2].input_channels_folded == 1


@pytest.mark.slow
def test_random_zeroed_channels_stay_exact(tmp_path):
    """Seeded random choices of zeroed channels and biases on both models, compared with TFLM."""
    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(2026)
    for trial in range(3):
        for name, data, layers in (("padded", _padded_model(), (0, 1, 2)), ("dense", _dense_model(), (0, 1))):
            model = parse_tflite(data)
            edits = []
            for op_index in layers:
                weights = model.tensors[model.operators[op_index].inputs[1]]
                channels = weights.shape[3] if model.operators[op_index].op == "DEPTHWISE_CONV_2D" else \
                    weights.shape[0]
                for channel in rng.choice(channels, size=int(rng.integers(1, channels // 2 + 1)), replace=False):
                    edits.append((op_index, int(channel), int(rng.choice([LOW, HIGH, int(rng.integers(-500, 500))]))))
            _check_exact(_edit_channels(data, edits), tmp_path / f"{name}-{trial}", f"{name}-{trial}")


def _multi_tensor_model() -> bytes:
    """Two inputs, two outputs: one output also feeds the other's branch (the inputs of one shape: the converter
    may order them either way)."""
    if "multi" not in _CONVERTED:
        import tensorflow as tf
        from conformance.harness import convert, keras_input

        tf.keras.utils.set_random_seed(13)
        layers = tf.keras.layers
        first, second = keras_input((6, 6, 4)), keras_input((6, 6, 4))
        x = layers.Conv2D(8, 1, activation="relu", bias_initializer="random_normal")(first)
        y = layers.Conv2D(6, 1, activation="relu", bias_initializer="random_normal")(x)
        z = layers.Conv2D(5, 1, activation="relu", bias_initializer="random_normal")(second)
        w = layers.Conv2D(4, 1, bias_initializer="random_normal")(y)
        v = layers.Conv2D(4, 1, bias_initializer="random_normal")(z)
        _CONVERTED["multi"] = convert(tf.keras.Model([first, second], [y, layers.Add()([w, v])]),
                                      [(6, 6, 4), (6, 6, 4)], 13)
    return _CONVERTED["multi"]


def _conv_by_weights(model, shape: tuple[int, ...]) -> int:
    return next(op.index for op in model.operators
                if op.op == "CONV_2D" and tuple(model.tensors[op.inputs[1]].shape) == shape)


@pytest.mark.slow
def test_graph_outputs_keep_their_channels_in_multi_tensor_models(tmp_path):
    """Zero channels inside each branch go; a zero channel of a graph output stays although the next layer could
    do without it (the caller reads it)."""
    pytest.importorskip("tensorflow")
    from conformance.harness import assert_matches_tflm

    data = _multi_tensor_model()
    model = parse_tflite(data)
    assert len(model.inputs) == 2 and len(model.outputs) == 2
    x, y, z, w, v = (_conv_by_weights(model, shape) for shape in (
        (8, 1, 1, 4), (6, 1, 1, 8), (5, 1, 1, 4), (4, 1, 1, 6), (4, 1, 1, 5)))
    edited = parse_tflite(_edit_channels(data, [(x, 1, LOW), (y, 2, LOW), (z, 0, LOW)]))
    pruned, report = prune_channels(edited)
    assert report.for_op(x).output_channels_removed == 1 and report.for_op(y).input_channels_removed == 1
    assert report.for_op(z).output_channels_removed == 1 and report.for_op(v).input_channels_removed == 1
    assert report.for_op(y).output_channels_removed == 0 and report.for_op(w) is None
    for index in (*edited.inputs, *edited.outputs):
        assert pruned.tensors[index].shape == edited.tensors[index].shape
    fast = HostEngine.build(edited, tmp_path / "fast", fast_kernels=True)
    assert fast.plan.pruning.channels_removed == 2
    assert_matches_tflm(fast, edited, count=6, seed=13, label="multi-tensor pruned")


@pytest.mark.slow
def test_int16x8_layers_are_not_pruned(tmp_path):
    """Pruning rewrites int8 layers only (its constants are int8 arithmetic): an int16x8 model, int32 biases or
    int64, keeps a channel that would go in int8, and still matches TFLM."""
    pytest.importorskip("tensorflow")
    import tensorflow as tf
    from conformance.harness import assert_matches_tflm, convert, keras_input

    tf.keras.utils.set_random_seed(14)
    layers = tf.keras.layers
    source = keras_input((6, 6, 4))
    x = layers.Conv2D(8, 1, activation="relu", bias_initializer="random_normal")(source)
    result = layers.Conv2D(4, 3, padding="same", bias_initializer="random_normal")(x)
    for int32_bias in (False, True):
        data = convert(tf.keras.Model(source, result), [(6, 6, 4)], 14, int16=True, int32_bias=int32_bias)
        model = parse_tflite(data)
        assert model.tensors[model.inputs[0]].dtype == "int16"
        edited = parse_tflite(_edit_channels(data, [(_conv_by_weights(model, (8, 1, 1, 4)), 1, LOW)]))
        pruned, report = prune_channels(edited)
        assert pruned is edited and not report.ops
        assert_matches_tflm(HostEngine.build(edited, tmp_path / f"bias32-{int32_bias}", fast_kernels=True), edited,
                            count=4, seed=14, label=f"int16x8 with a zero channel, int32 bias {int32_bias}")
