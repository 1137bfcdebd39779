"""Multiply-accumulate counts and parameter counts per operator."""

from __future__ import annotations

from dataclasses import dataclass

from tinydeploy.model.tflite import Operator, TfliteModel


@dataclass(frozen=True)
class OpCost:
    index: int
    op: str
    macs: int
    params: int  # elements of the constant tensors the op reads (weights, biases)
    output_shape: tuple[int, ...]


def _elements(shape) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def op_macs(model: TfliteModel, op: Operator) -> int:
    """MACs of the ops whose cost is dominated by multiply-accumulates; 0 for the others."""
    tensors = model.tensors
    out = tensors[op.outputs[0]] if op.outputs else None
    if out is None or len(op.inputs) < 2 or op.inputs[1] == -1:
        return 0
    weights = tensors[op.inputs[1]]
    if op.op == "CONV_2D":
        # filter [out_c, kh, kw, in_c/groups]: each output element sums kh*kw*in_c products
        _, kh, kw, ic = weights.shape
        return _elements(out.shape) * kh * kw * ic
    if op.op == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = weights.shape
        return _elements(out.shape) * kh * kw
    if op.op == "FULLY_CONNECTED":
        return _elements(out.shape) * weights.shape[-1]
    if op.op == "TRANSPOSE_CONV":
        # inputs: output_shape, weights [out_c, kh, kw, in_c], input
        _, kh, kw, ic = weights.shape
        source = tensors[op.inputs[2]]
        return _elements(source.shape) * kh * kw * weights.shape[0]
    if op.op == "BATCH_MATMUL":
        a, b = tensors[op.inputs[0]], tensors[op.inputs[1]]
        adj_x = op.options.get("adjX", False)
        k = a.shape[-2] if adj_x else a.shape[-1]
        return _elements(out.shape) * k if b is not None else 0
    return 0


WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def op_params(model: TfliteModel, op: Operator) -> int:
    """Learned parameters: the constant inputs of weighted ops, and non-int32 constants of the others
    (int32 constants of other ops are shapes and axes, not parameters)."""
    total = 0
    for i in op.inputs:
        if i == -1 or not model.tensors[i].is_constant:
            continue
        tensor = model.tensors[i]
        if op.op in WEIGHTED_OPS or tensor.dtype != "int32":
            total += tensor.elements
    return total


def op_costs(model: TfliteModel) -> list[OpCost]:
    return [
        OpCost(op.index, op.op, op_macs(model, op), op_params(model, op),
               model.tensors[op.outputs[0]].shape if op.outputs else ())
        for op in model.operators
    ]
