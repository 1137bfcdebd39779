"""REDUCE_MAX (Keras global max pooling, tf.reduce_max) over constant axes, with and without keep_dims: int8.
int16 is refused, as TFLM (the reference the engine is bit-exact with) refuses it."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, check_case, converted, keras_input

draw = CaseDrawer("reduce_max")
for axes, keep in (((1, 2), True), ((1, 2), False), ((3,), True), ((1,), False), ((2, 3), False), ((1, 2, 3), True)):
    height, width, channels = draw.image(channels=8)
    draw.add("ReduceMax", ["REDUCE_MAX"], shape=(height, width, max(channels, 2)), axes=axes, keep=keep)
draw.add("ReduceMax", ["REDUCE_MAX"], shape=(draw.integer(3, 40), draw.integer(2, 12)), axes=(1,), keep=False)
CASES = draw.cases
INT16 = CaseDrawer("reduce_max_int16").add("ReduceMax", ["REDUCE_MAX"], int16=True, shape=(9, 5), axes=(1,),
                                           keep=False)


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    outputs = tf.keras.layers.Lambda(
        lambda t: tf.reduce_max(t, axis=list(spec["axes"]), keepdims=spec["keep"]))(inputs)
    return tf.keras.Model(inputs, outputs), [spec["shape"]]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_reduce_max_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)


@pytest.mark.slow
def test_int16_reduce_max_is_refused_by_both_engines_as_tflm_fails_it():
    pytest.importorskip("tensorflow")
    from tflite_micro import runtime

    from tinydeploy.engines.support import engine_support
    from tinydeploy.model.tflite import parse_tflite

    model_bytes = converted(INT16, build)
    model = parse_tflite(model_bytes)
    assert any("REDUCE_MAX on int16" in problem for problem in engine_support(model, "native").problems)
    assert any("float32 and int8 only" in problem for problem in engine_support(model, "tflm").problems)
    interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=64 * 1024)
    with pytest.raises(Exception):  # TFLM: "Only float32 and int8 types are supported."
        interpreter.invoke()
