"""SVDF in the native engine against TFLM, over consecutive invokes (the activation state carries over).

No Keras layer converts to SVDF, so the randomized single-op models are written with the schema (int8 and int16
activation state, ranks, batches, memory lengths, zero points); the whole keyword_scrambled models from TFLM's
examples run their SVDF/FULLY_CONNECTED chain. Cases come from TD_CONFORMANCE_SEED; a failure names the case."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from single_op_models import GraphSpec, OpSpec, TensorSpec, build_model, float32, options, random_int
from stateful_conformance import assert_invokes_match_tflm, random_inputs
from tinydeploy.engine.host import HostEngine
from tinydeploy.model.tflite import load_tflite, parse_tflite

SEED = int(os.environ.get("TD_CONFORMANCE_SEED", "20261124"))
INVOKES = 5
EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "models" / "tflm-examples"


@dataclass(frozen=True)
class SvdfCase:
    batches: int
    input_size: int
    units: int
    rank: int
    memory: int
    state: str  # "int8" or "int16": the activation state's and time weights' type
    seed: int

    @property
    def label(self) -> str:
        return (f"svdf-b{self.batches}-in{self.input_size}-u{self.units}-r{self.rank}-m{self.memory}-{self.state}"
                f"-seed{self.seed}")


def draw_cases(seed: int) -> list[SvdfCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for state in ("int8", "int16"):
        for _ in range(5):
            cases.append(SvdfCase(int(rng.integers(1, 3)), int(rng.integers(1, 40)), int(rng.integers(1, 12)),
                                  int(rng.integers(1, 4)), int(rng.integers(1, 11)), state,
                                  int(rng.integers(0, 2 ** 31))))
    return cases


CASES = draw_cases(SEED)


def svdf_model(case: SvdfCase) -> bytes:
    """One SVDF whose scales keep every stage inside its type's range for uniform int8 inputs (no saturation)."""
    rng = np.random.default_rng(case.seed)
    filters = case.units * case.rank
    wide = case.state == "int16"
    uniform_std = 74.0  # of uniform int8 values
    input_scale, feature_scale = 0.05, 0.01
    state_std = 6000.0 if wide else 30.0
    state_scale = float32(input_scale * feature_scale * uniform_std * uniform_std * math.sqrt(case.input_size)
                          / state_std)
    time_limit = 2000 if wide else 127
    time_scale = 0.004
    time_std = time_limit / math.sqrt(3.0)
    dot_std = time_std * state_std * math.sqrt(case.memory * case.rank)
    bias_scale = float32(np.float32(state_scale) * np.float32(time_scale))
    output_scale = float32(bias_scale * dot_std / 40.0)
    state_zero_point = 0 if wide else int(rng.integers(-20, 21))
    tensors = [
        TensorSpec("input", (case.batches, case.input_size), "int8", input_scale, int(rng.integers(-10, 11))),
        TensorSpec("feature_weights", (filters, case.input_size), "int8", feature_scale, 0,
                   random_int(rng, "int8", (filters, case.input_size), -127, 127)),
        TensorSpec("time_weights", (filters, case.memory), case.state, time_scale, 0,
                   random_int(rng, case.state, (filters, case.memory), -time_limit, time_limit)),
        TensorSpec("bias", (case.units,), "int32", bias_scale, 0,
                   rng.normal(0.0, dot_std / 4.0, size=case.units).astype(np.int32)),
        TensorSpec("activation_state", (case.batches, filters * case.memory), case.state, state_scale,
                   state_zero_point, variable=True),
        TensorSpec("output", (case.batches, case.units), "int8", output_scale, int(rng.integers(-10, 11))),
    ]
    op = OpSpec("SVDF", [0, 1, 2, 3, 4], [5], "SVDFOptions", options("SVDFOptionsT", rank=case.rank))
    return build_model(GraphSpec(tensors, [op], inputs=[0], outputs=[5]))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_random_svdf_matches_tflm(case, tmp_path):
    model = parse_tflite(svdf_model(case))
    engine = HostEngine.build(model, tmp_path)
    assert_invokes_match_tflm(engine, model, random_inputs(model, INVOKES, case.seed), case.label,
                              min_distinct=min(8, case.units * case.batches))
    state = next(t for t in model.tensors if t.is_variable)
    assert state.index in engine.plan.offsets  # the state lives in the plan


@pytest.mark.parametrize("name", ["keyword_scrambled", "keyword_scrambled_8bit"])
def test_keyword_scrambled_svdf_chain_matches_tflm(name, tmp_path):
    """TFLM's keyword_scrambled models (int16 and int8 SVDF state): the chain from the first SVDF up to its first,
    fifth (the first with 32 filters of 32 steps) and last SVDF, the graph's output moved onto that SVDF's
    activation state (its outputs saturate to a few values; the state does not, and every later invoke reads it).
    The whole model also needs QUANTIZE int16->int8, SOFTMAX int8->int16 and QUANTIZE int16->int32 (the int16
    ops' work): this test's copy of the file cuts them off."""
    path = EXAMPLES / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/models/tflm-examples is not beside the checkout)")
    from tflite_edit import edit_tflite

    original = load_tflite(path)
    svdfs = [op for op in original.operators if op.op == "SVDF"]
    assert len(svdfs) == 7
    first = svdfs[0].index
    for number in (0, 4, 6):
        last = svdfs[number]

        def chain_to_state(flatbuffer, last=last):
            graph = flatbuffer.subgraphs[0]
            graph.inputs = [svdfs[0].inputs[0]]
            graph.outputs = [last.inputs[4]]  # the activation state (a variable tensor)
            graph.operators = graph.operators[first:last.index + 1]

        model = parse_tflite(edit_tflite(original.raw, chain_to_state))
        engine = HostEngine.build(model, tmp_path / str(number))
        assert_invokes_match_tflm(engine, model, random_inputs(model, 8, 3), f"{name} up to SVDF #{number}",
                                  min_distinct=8)
