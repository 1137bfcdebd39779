"""BATCH_MATMUL in the native engine against TFLM: int8 and int16, broadcast batch dimensions, adj_x / adj_y,
constant or computed operands.

Fast part: schema-written single-op models (random shapes and flags; until the engine takes several graph inputs
both computed operands come from the one input, x . x^T and x^T . x). Slow part: tf.matmul converted by TensorFlow,
of two activations (two Dense layers) and of an activation with a constant. Cases come from TD_CONFORMANCE_SEED."""

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
INPUT_STD = {"int8": 74.0, "int16": 18918.0}  # of uniform values over the type's range
OUTPUT_STD = {"int8": 40.0, "int16": 8000.0}


@dataclass(frozen=True)
class MatmulCase:
    dtype: str
    form: str  # "constant rhs", "constant lhs", "x.xT", "xT.x"
    lhs_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]
    adj_x: bool
    adj_y: bool
    seed: int

    @property
    def label(self) -> str:
        dims = "x".join(map(str, self.lhs_shape)) + ("T" if self.adj_x else "") + "-" + \
            "x".join(map(str, self.rhs_shape)) + ("T" if self.adj_y else "")
        return f"matmul-{self.dtype}-{self.form.replace(' ', '_').replace('.', '')}-{dims}-seed{self.seed}"


def draw_cases(seed: int) -> list[MatmulCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for dtype in ("int8", "int16"):
        for form in ("constant rhs", "constant lhs", "x.xT", "xT.x", "constant rhs"):
            rows, depth, cols = (int(rng.integers(1, 9)) for _ in range(3))
            batch = [int(rng.integers(1, 4)) for _ in range(int(rng.integers(0, 3)))]
            adj_x, adj_y = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
            if form in ("x.xT", "xT.x"):
                shape = tuple(batch + [rows, depth])
                cases.append(MatmulCase(dtype, form, shape, shape, form == "xT.x", form == "x.xT",
                                        int(rng.integers(0, 2 ** 31))))
                continue
            other = [d if rng.integers(0, 2) else 1 for d in batch][int(rng.integers(0, len(batch) + 1)):]
            lhs = tuple(batch + ([depth, rows] if adj_x else [rows, depth]))
            rhs = tuple(other + ([cols, depth] if adj_y else [depth, cols]))
            if form == "constant lhs":
                lhs, rhs = tuple(other + list(lhs[len(batch):])), tuple(batch + list(rhs[len(other):]))
            cases.append(MatmulCase(dtype, form, lhs, rhs, adj_x, adj_y, int(rng.integers(0, 2 ** 31))))
    return cases


CASES = draw_cases(SEED)


def matmul_model(case: MatmulCase) -> bytes:
    rng = np.random.default_rng(case.seed)
    wide = case.dtype == "int16"

    def zero_point():
        return 0 if wide else int(rng.integers(-20, 21))

    lhs_scale, rhs_scale = 0.02, 0.03
    self_product = case.form in ("x.xT", "xT.x")
    depth = case.lhs_shape[-2] if case.adj_x else case.lhs_shape[-1]
    output_scale = float32(lhs_scale * (lhs_scale if self_product else rhs_scale) * INPUT_STD[case.dtype] ** 2
                           * math.sqrt(depth) / OUTPUT_STD[case.dtype])
    lhs_zero_point = zero_point()
    tensors = [TensorSpec("lhs", case.lhs_shape, case.dtype, lhs_scale, lhs_zero_point)]
    if self_product:
        operands = [0, 0]
    else:
        constant = TensorSpec("constant", case.rhs_shape if case.form == "constant rhs" else case.lhs_shape,
                              case.dtype, rhs_scale, zero_point())
        constant.data = random_int(rng, case.dtype, constant.shape)
        if case.form == "constant rhs":
            tensors.append(TensorSpec("rhs", case.rhs_shape, case.dtype, rhs_scale, constant.zero_point,
                                      constant.data))
            operands = [0, 1]
        else:
            tensors = [TensorSpec("rhs", case.rhs_shape, case.dtype, lhs_scale, lhs_zero_point),
                       TensorSpec("lhs", case.lhs_shape, case.dtype, rhs_scale, constant.zero_point, constant.data)]
            operands = [1, 0]
    left = [1] * (5 - len(case.lhs_shape)) + list(case.lhs_shape)
    right = [1] * (5 - len(case.rhs_shape)) + list(case.rhs_shape)
    batch = [max(a, b) for a, b in zip(left[:3], right[:3])]
    rows = left[4] if case.adj_x else left[3]
    cols = right[3] if case.adj_y else right[4]
    rank = max(len(case.lhs_shape), len(case.rhs_shape))
    out_shape = tuple(batch[3 - (rank - 2):] + [rows, cols])
    tensors.append(TensorSpec("output", out_shape, case.dtype, output_scale, zero_point()))
    op = OpSpec("BATCH_MATMUL", operands, [len(tensors) - 1], "BatchMatMulOptions",
                options("BatchMatMulOptionsT", adjX=case.adj_x, adjY=case.adj_y))
    return build_model(GraphSpec(tensors, [op], inputs=[0], outputs=[len(tensors) - 1]))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_schema_batch_matmul_matches_tflm(case, tmp_path):
    model = parse_tflite(matmul_model(case))
    engine = HostEngine.build(model, tmp_path)
    output = model.tensors[model.outputs[0]]
    assert_invokes_match_tflm(engine, model, random_inputs(model, 3, case.seed), case.label,
                              min_distinct=min(6, output.elements))


# ------------------------------------------------------------------------------ tf.matmul, converted


TF_FORMS = [("two activations", "int8"), ("constant", "int8"), ("constant", "int16"), ("self", "int8"),
            ("self", "int16")]


def tf_matmul_model(form: str, dtype: str, seed: int) -> bytes:
    tf = pytest.importorskip("tensorflow")
    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    if form == "two activations":  # two Dense layers' outputs multiplied (adj_y)
        shape = (4, 6)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        a, b = layers.Dense(5)(inputs), layers.Dense(5)(inputs)
        outputs = layers.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True))([a, b])
    elif form == "constant":  # rank 4 x rank 3: the constant broadcasts over the leading batch dimension
        shape = (3, 4, 6)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        constant = tf.constant(rng.normal(size=(3, 6, 5)).astype(np.float32))
        outputs = layers.Lambda(lambda t: tf.matmul(t, constant))(inputs)
    else:  # x^T . x (adj_x)
        shape = (5, 7)
        inputs = tf.keras.Input(shape=shape, batch_size=1)
        outputs = layers.Lambda(lambda t: tf.matmul(t, t, transpose_a=True))(inputs)

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
@pytest.mark.parametrize("form, dtype", TF_FORMS, ids=[f"{f.replace(' ', '_')}-{d}" for f, d in TF_FORMS])
def test_tf_matmul_matches_tflm(form, dtype, tmp_path):
    model = parse_tflite(tf_matmul_model(form, dtype, SEED % 1000))
    assert "BATCH_MATMUL" in model.op_names, f"{form} {dtype}: converted to {model.op_names}"
    engine = HostEngine.build(model, tmp_path)
    assert_invokes_match_tflm(engine, model, random_inputs(model, 4, SEED), f"tf.matmul {form} {dtype}",
                              min_distinct=6)
