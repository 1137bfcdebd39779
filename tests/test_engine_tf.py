"""Single-op and small Keras models converted to int8 by TensorFlow: native engine == TFLM byte for byte."""

from __future__ import annotations

import pytest

from engine_models import (DenseCase, LayerCase, assert_engine_matches_tflm, dense_flatten_model, dense_model,
                           layer_model, sine_model)
from tinydeploy.engine.host import HostEngine
from tinydeploy.model.tflite import parse_tflite

pytest.importorskip("tensorflow")

DENSE_CASES = [
    DenseCase((10,), 5, None, True, True, seed=1),
    DenseCase((10,), 5, None, True, False, seed=2),
    DenseCase((37,), 19, "relu", True, True, seed=3),
    DenseCase((64,), 33, "relu6", True, False, seed=4),
    DenseCase((23,), 7, "relu6", False, True, seed=5),
    DenseCase((16,), 12, "relu", False, False, seed=6),
    DenseCase((9,), 4, "relu_n1_to_1", True, True, seed=7),
    DenseCase((4, 10), 8, "relu", True, True, seed=8),  # 3-D input: 4 batches of rows
    DenseCase((3, 5, 6), 11, None, True, False, seed=9),
]

LAYER_CASES = [  # (case, the op it must convert to)
    (LayerCase("Conv2D", (9, 7, 3), (("filters", 5), ("kernel_size", 3), ("padding", "same"),
                                     ("activation", "relu")), 21), "CONV_2D"),
    (LayerCase("Conv2D", (10, 8, 4), (("filters", 6), ("kernel_size", (3, 2)), ("strides", 2),
                                      ("padding", "same")), 22), "CONV_2D"),
    (LayerCase("Conv2D", (11, 9, 2), (("filters", 4), ("kernel_size", 3), ("dilation_rate", 2),
                                      ("activation", "relu6")), 23), "CONV_2D"),
    (LayerCase("Conv2D", (8, 8, 3), (("filters", 4), ("kernel_size", 3), ("strides", 2), ("use_bias", False)), 24,
               per_channel=False), "CONV_2D"),
    (LayerCase("DepthwiseConv2D", (9, 7, 4), (("kernel_size", 3), ("padding", "same"), ("activation", "relu")), 25),
     "DEPTHWISE_CONV_2D"),
    (LayerCase("DepthwiseConv2D", (10, 8, 3), (("kernel_size", 3), ("strides", 2), ("depth_multiplier", 2),
                                               ("padding", "same")), 26), "DEPTHWISE_CONV_2D"),
    (LayerCase("DepthwiseConv2D", (8, 8, 4), (("kernel_size", 3), ("activation", "relu6")), 27, per_channel=False),
     "DEPTHWISE_CONV_2D"),
    (LayerCase("AveragePooling2D", (9, 7, 5), (("pool_size", 3), ("strides", 2), ("padding", "same")), 28),
     "AVERAGE_POOL_2D"),
    (LayerCase("AveragePooling2D", (25, 5, 8), (("pool_size", (25, 5)),), 29), "AVERAGE_POOL_2D"),  # KWS's global pool
]


def _check(model_bytes: bytes, tmp_path, seed: int, label: str) -> HostEngine:
    model = parse_tflite(model_bytes)
    engine = HostEngine.build(model, tmp_path)
    shape = model.tensors[model.inputs[0]].shape
    assert_engine_matches_tflm(engine, model_bytes, shape, count=10, seed=seed, label=label)
    return engine


@pytest.mark.slow
@pytest.mark.parametrize("case", DENSE_CASES, ids=lambda c: c.label)
def test_dense_layer_matches_tflm(case, tmp_path):
    model_bytes = dense_model(case)
    model = parse_tflite(model_bytes)
    assert model.op_names == ["FULLY_CONNECTED"]
    weights = model.tensors[model.operators[0].inputs[1]]
    assert weights.quant.per_channel == case.per_channel
    assert (model.operators[0].inputs[2] != -1) == case.use_bias
    expected_activation = {None: "NONE"}.get(case.activation, (case.activation or "").upper())
    assert model.operators[0].activation == expected_activation
    _check(model_bytes, tmp_path, case.seed, case.label)


@pytest.mark.slow
def test_trained_sine_mlp_matches_tflm(tmp_path):
    _check(sine_model(seed=11), tmp_path, 11, "sine")


@pytest.mark.slow
def test_flatten_is_a_view_sharing_memory(tmp_path):
    model_bytes = dense_flatten_model(seed=12)
    model = parse_tflite(model_bytes)
    assert "RESHAPE" in model.op_names
    engine = _check(model_bytes, tmp_path, 12, "dense-flatten-dense")
    reshape = model.operators[model.op_names.index("RESHAPE")]
    assert engine.plan.offsets[reshape.outputs[0]] == engine.plan.offsets[reshape.inputs[0]]


@pytest.mark.slow
@pytest.mark.parametrize("case, op_name", LAYER_CASES, ids=lambda c: getattr(c, "label", ""))
def test_layer_matches_tflm(case, op_name, tmp_path):
    model_bytes = layer_model(case)
    model = parse_tflite(model_bytes)
    assert model.op_names == [op_name]
    weights = model.operators[0].inputs[1] if op_name != "AVERAGE_POOL_2D" else None
    if weights is not None:
        assert model.tensors[weights].quant.per_channel == case.per_channel
    _check(model_bytes, tmp_path, case.seed, case.label)
