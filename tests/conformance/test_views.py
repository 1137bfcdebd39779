"""SQUEEZE and EXPAND_DIMS, which the converter turns into RESHAPE: converted RESHAPE models retyped to each op.
All three are views (no code, the output shares the input's memory)."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.harness import CaseDrawer, check_case, converted, edited, keras_input

draw = CaseDrawer("views")
SQUEEZE = draw.add("Squeeze", [], shape=(5, 1, 3), axis=2)
EXPAND = draw.add("ExpandDims", [], shape=(5, 3), axis=2)
SQUEEZE16 = draw.add("Squeeze", [], int16=True, shape=(1, 4, 6), axis=1)


def build(case):
    import tensorflow as tf

    spec = case.options
    inputs = keras_input(spec["shape"])
    if case.kind == "Squeeze":
        function = lambda t: tf.squeeze(t, axis=spec["axis"])  # noqa: E731
    else:
        function = lambda t: tf.expand_dims(t, axis=spec["axis"])  # noqa: E731
    # a Conv2D-free model: scale, view, scale (the view sits between two ops)
    hidden = tf.keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Lambda(lambda t: function(t) * 0.5)(hidden)), [spec["shape"]]


def retyped(case, op_name: str):
    """The case's model with its RESHAPE replaced by `op_name` (SQUEEZE with its axis, or EXPAND_DIMS with a new
    constant axis tensor)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def change(model):
        graph = model.subgraphs[0]
        reshape = next(op for op in graph.operators
                       if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.RESHAPE)
        code = schema.OperatorCodeT()
        code.builtinCode = getattr(schema.BuiltinOperator, op_name)
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        code.version = 1
        model.operatorCodes.append(code)
        reshape.opcodeIndex = len(model.operatorCodes) - 1
        axis = case.options["axis"]  # counts the batch, as tf.squeeze/expand_dims do
        if op_name == "SQUEEZE":
            reshape.inputs = [reshape.inputs[0]]
            reshape.builtinOptionsType = schema.BuiltinOptions.SqueezeOptions
            reshape.builtinOptions = schema.SqueezeOptionsT()
            reshape.builtinOptions.squeezeDims = [axis]
        else:
            buffer = schema.BufferT()
            buffer.data = np.array([axis], dtype=np.int32).view(np.uint8)
            model.buffers.append(buffer)
            tensor = schema.TensorT()
            tensor.shape, tensor.type, tensor.buffer, tensor.name = [1], schema.TensorType.INT32, \
                len(model.buffers) - 1, b"axis"
            graph.tensors.append(tensor)
            reshape.inputs = [reshape.inputs[0], len(graph.tensors) - 1]
            reshape.builtinOptionsType = schema.BuiltinOptions.ExpandDimsOptions
            reshape.builtinOptions = schema.ExpandDimsOptionsT()

    return edited(converted(case, build), change)


@pytest.mark.slow
@pytest.mark.parametrize("case, op_name", [(SQUEEZE, "SQUEEZE"), (EXPAND, "EXPAND_DIMS"), (SQUEEZE16, "SQUEEZE")],
                         ids=["squeeze", "expand_dims", "squeeze-16x8"])
def test_view_matches_tflm_and_shares_memory(case, op_name, tmp_path):
    model, engine = check_case(case, build, tmp_path, model_bytes=retyped(case, op_name))
    assert op_name in model.op_names and "RESHAPE" not in model.op_names
    step = next(s for s in engine.plan.steps if s.op == op_name)
    assert step.placement == "view" and step.function is None
    source = model.operators[step.op_index].inputs[0]
    assert engine.plan.offsets[source] == step.output_offset
