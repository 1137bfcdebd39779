"""PACK (tf.stack of several model inputs) and UNPACK (tf.unstack, every piece a model output) along each axis,
including the batch axis, and an UNPACK into one piece (a view); int8 and int16."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, keras_input

draw = CaseDrawer("pack")
for axis, int16 in ((0, False), (1, False), (2, True), (3, False), (-1, True)):
    draw.add("Pack", ["PACK"], int16=int16, shape=(draw.integer(1, 6), draw.integer(1, 6)), axis=axis,
             count=draw.integer(2, 4))
for axis, int16 in ((1, False), (2, True), (3, False), (-2, True)):
    shape = list(draw.image(low=1, high=5, channels=4))
    shape[axis % 3 - 1 if axis > 0 else axis] = draw.integer(2, 4)
    draw.add("Unpack", ["UNPACK"], int16=int16, shape=tuple(shape), axis=axis)
draw.add("Unpack", ["UNPACK"], int16=True, shape=(1, draw.integer(2, 6), draw.integer(2, 6)), axis=1)
CASES = draw.cases


def build(case):
    import tensorflow as tf

    spec = case.options
    if case.kind == "Pack":
        inputs = [keras_input(spec["shape"]) for _ in range(spec["count"])]
        outputs = tf.keras.layers.Lambda(lambda pieces: tf.stack(pieces, axis=spec["axis"]))(inputs)
        return tf.keras.Model(inputs, outputs), [spec["shape"]] * len(inputs)
    inputs = keras_input(spec["shape"])
    outputs = tf.keras.layers.Lambda(lambda t: tf.unstack(t, axis=spec["axis"]))(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_pack_matches_tflm(case, tmp_path):
    model, engine = check_case(case, build, tmp_path)
    op = next(op for op in model.operators if op.op in ("PACK", "UNPACK"))
    pieces = len(op.inputs) if op.op == "PACK" else len(op.outputs)
    step = next(step for step in engine.plan.steps if step.op_index == op.index)
    assert (step.function is None) == (pieces == 1)  # one piece: a view, no code
