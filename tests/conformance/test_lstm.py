"""UNIDIRECTIONAL_SEQUENCE_LSTM in the native engine against TFLM, over consecutive invokes (hidden and cell state
carry over).

int8: Keras LSTM layers converted by TensorFlow (the Keras 2 layer, `tf_keras`: Keras 3's LSTM converts to a WHILE
loop, and its int8 calibration crashes TF 2.21) and schema-written ones for what the converter never emits (time
major, batches, no clip, weight zero points). int16x8: schema-written only, the converter refuses
16x8 LSTMs. Cases come from TD_CONFORMANCE_SEED; a failure names the case."""

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
INVOKES = 4
TANH = 4  # the cell gate's activation (the schema has no sigmoid there)


@dataclass(frozen=True)
class LstmCase:
    batches: int
    steps: int
    inputs: int
    units: int
    dtype: str  # activations: "int8" or "int16"
    seed: int
    time_major: bool = False
    cell_clip: float = 10.0
    weights_zero_point: int = 0

    @property
    def label(self) -> str:
        return (f"lstm-{self.dtype}-b{self.batches}-t{self.steps}-in{self.inputs}-u{self.units}"
                f"{'-timemajor' if self.time_major else ''}"
                f"-clip{self.cell_clip:g}-wzp{self.weights_zero_point}-seed{self.seed}")


def draw_cases(seed: int) -> list[LstmCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for dtype in ("int8", "int16"):
        for number in range(6):
            cases.append(LstmCase(
                batches=int(rng.integers(1, 3)), steps=int(rng.integers(1, 6)), inputs=int(rng.integers(1, 20)),
                units=int(rng.integers(1, 12)), dtype=dtype, seed=int(rng.integers(0, 2 ** 31)),
                time_major=bool(number % 2),
                cell_clip=[10.0, 0.0, 0.75][number % 3],
                weights_zero_point=int(rng.integers(-3, 4)) if dtype == "int8" and number == 4 else 0))
    return cases


CASES = draw_cases(SEED)


def lstm_model(case: LstmCase) -> bytes:
    """One LSTM whose weight scales put the gates' pre-activations around +-2 for uniform inputs."""
    rng = np.random.default_rng(case.seed)
    wide = case.dtype == "int16"
    shape = (case.steps, case.batches, case.inputs) if case.time_major else (case.batches, case.steps, case.inputs)
    out_shape = shape[:2] + (case.units,)
    input_std = 18918.0 if wide else 74.0  # uniform int16 / int8
    input_scale = float32(1.0 / 4096 if wide else 0.03)
    hidden_scale = float32(2.0 ** -15 if wide else 1.0 / 128)
    hidden_zero_point = 0 if wide else int(rng.integers(-20, 21))
    hidden_std = 12000.0 if wide else 50.0
    cell_scale = 2.0 ** -11
    input_weight_scale = float32(2.0 / (input_scale * input_std * 74.0 * math.sqrt(case.inputs)))
    recurrent_weight_scale = float32(1.5 / (hidden_scale * hidden_std * 74.0 * math.sqrt(case.units)))
    bias_type = "int64" if wide else "int32"
    tensors = [TensorSpec("input", shape, case.dtype, input_scale,
                          0 if wide else int(rng.integers(-20, 21)))]

    def add(spec: TensorSpec) -> int:
        tensors.append(spec)
        return len(tensors) - 1

    inputs = [0] + [-1] * 23
    zero_point = case.weights_zero_point
    for gate, (input_position, recurrent_position, bias_position) in {
            "input": (1, 5, 12), "forget": (2, 6, 13), "cell": (3, 7, 14), "output": (4, 8, 15)}.items():
        inputs[input_position] = add(TensorSpec(
            f"{gate}_input_weights", (case.units, case.inputs), "int8", input_weight_scale, zero_point,
            random_int(rng, "int8", (case.units, case.inputs), -127 + max(zero_point, 0), 127 + min(zero_point, 0))))
        inputs[recurrent_position] = add(TensorSpec(
            f"{gate}_recurrent_weights", (case.units, case.units), "int8", recurrent_weight_scale, zero_point,
            random_int(rng, "int8", (case.units, case.units), -127 + max(zero_point, 0), 127 + min(zero_point, 0))))
        bias_scale = float32(np.float32(input_scale) * np.float32(input_weight_scale))
        inputs[bias_position] = add(TensorSpec(
            f"{gate}_bias", (case.units,), bias_type, bias_scale, 0,
            np.round(rng.normal(0.0, 0.5, size=case.units) / bias_scale).astype(bias_type)))
    inputs[18] = add(TensorSpec("hidden_state", (case.batches, case.units), case.dtype, hidden_scale,
                                hidden_zero_point, variable=True))
    inputs[19] = add(TensorSpec("cell_state", (case.batches, case.units), "int16", cell_scale, 0, variable=True))
    output = add(TensorSpec("output", out_shape, case.dtype, hidden_scale, hidden_zero_point))
    op = OpSpec("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, [output], "UnidirectionalSequenceLSTMOptions",
                options("UnidirectionalSequenceLSTMOptionsT", fusedActivationFunction=TANH,
                        cellClip=case.cell_clip, timeMajor=case.time_major))
    return build_model(GraphSpec(tensors, [op], inputs=[0], outputs=[output]))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_schema_lstm_matches_tflm(case, tmp_path):
    model = parse_tflite(lstm_model(case))
    engine = HostEngine.build(model, tmp_path)
    assert_invokes_match_tflm(engine, model, random_inputs(model, INVOKES, case.seed), case.label,
                              min_distinct=min(6, case.units * case.batches * case.steps))
    states = [t.index for t in model.tensors if t.is_variable]
    assert len(states) == 2 and all(t in engine.plan.offsets for t in states)


# ------------------------------------------------------------------------------ Keras layers, converted


@dataclass(frozen=True)
class KerasLstmCase:
    steps: int
    inputs: int
    units: int
    seed: int

    @property
    def label(self) -> str:
        return f"keras-lstm-t{self.steps}-in{self.inputs}-u{self.units}-seed{self.seed}"


def draw_keras_cases(seed: int) -> list[KerasLstmCase]:
    rng = np.random.default_rng(seed + 1)
    return [KerasLstmCase(int(rng.integers(1, 9)), int(rng.integers(1, 16)), int(rng.integers(1, 12)),
                          int(rng.integers(0, 2 ** 31))) for _ in range(5)]


KERAS_CASES = draw_keras_cases(SEED)


def keras_lstm_model(case: KerasLstmCase) -> bytes:
    """A Keras 2 LSTM layer (return_sequences) converted to full int8 by TensorFlow."""
    keras = pytest.importorskip("tf_keras", reason="tf_keras (Keras 2) is needed: Keras 3's LSTM does not convert "
                                                   "to UNIDIRECTIONAL_SEQUENCE_LSTM")
    import tensorflow as tf

    keras.utils.set_random_seed(case.seed)
    inputs = keras.Input(shape=(case.steps, case.inputs), batch_size=1)
    outputs = keras.layers.LSTM(case.units, return_sequences=True,
                                bias_initializer="random_normal")(inputs)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(case.seed)

    def representative():
        for _ in range(16):
            yield [rng.normal(0.0, 1.0, size=(1, case.steps, case.inputs)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


@pytest.mark.slow
@pytest.mark.parametrize("case", KERAS_CASES, ids=lambda c: c.label)
def test_keras_lstm_matches_tflm(case, tmp_path):
    model = parse_tflite(keras_lstm_model(case))
    assert model.op_names == ["UNIDIRECTIONAL_SEQUENCE_LSTM"], f"{case.label}: converted to {model.op_names}"
    engine = HostEngine.build(model, tmp_path)
    assert_invokes_match_tflm(engine, model, random_inputs(model, INVOKES, case.seed), case.label,
                              min_distinct=min(6, case.units * case.steps))
