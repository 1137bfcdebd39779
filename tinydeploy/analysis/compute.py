"""Multiply-accumulate counts and parameter counts per operator.

MACs count the multiplications in an op's definition: one per multiply-accumulate of the dot-product layers
(convolutions, fully connected, matrix products, recurrent cells) and one per element of elementwise products
(MUL, SQUARE, SQUARED_DIFFERENCE, PRELU). Additions, divisions, pooling, reductions, non-linear activations,
comparisons and data movement have none (the convention of the MACs published for MLPerf Tiny's models).
An op outside both lists (a custom op, a control-flow op, a rare builtin) has unknown MACs: `macs` is None and
the report names it, never a silent 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tinydeploy.model.tflite import Operator, Tensor, TfliteModel


@dataclass(frozen=True)
class OpCost:
    index: int
    op: str
    macs: int | None  # None: tinydeploy does not know this op's arithmetic (see unknown_mac_ops)
    params: int  # elements of the constant tensors the op reads (weights, biases)
    output_shape: tuple[int, ...]


def _input(model: TfliteModel, op: Operator, position: int) -> Tensor | None:
    if position >= len(op.inputs) or op.inputs[position] == -1:
        return None
    return model.tensors[op.inputs[position]]


def _output_elements(model: TfliteModel, op: Operator) -> int:
    return model.tensors[op.outputs[0]].elements


def _conv_2d(model: TfliteModel, op: Operator) -> int:
    # filter [out_c, kh, kw, in_c / groups]: each output element sums kh*kw*in_c/groups products
    _, kh, kw, ic = _input(model, op, 1).shape
    return _output_elements(model, op) * kh * kw * ic


def _depthwise_conv_2d(model: TfliteModel, op: Operator) -> int:
    _, kh, kw, _ = _input(model, op, 1).shape  # [1, kh, kw, in_c * multiplier]: one channel per output
    return _output_elements(model, op) * kh * kw


def _fully_connected(model: TfliteModel, op: Operator) -> int:
    return _output_elements(model, op) * _input(model, op, 1).shape[-1]  # weights [units, inputs]


def _transpose_conv(model: TfliteModel, op: Operator) -> int:
    # inputs: output shape, weights [out_c, kh, kw, in_c], input [n, h, w, in_c]: every input element is
    # scattered into a kh x kw window of every output channel
    out_c, kh, kw, _ = _input(model, op, 1).shape
    return _input(model, op, 2).elements * kh * kw * out_c


def _conv_3d(model: TfliteModel, op: Operator) -> int:
    kd, kh, kw, ic, _ = _input(model, op, 1).shape  # filter [kd, kh, kw, in_c, out_c]
    return _output_elements(model, op) * kd * kh * kw * ic


def _conv_3d_transpose(model: TfliteModel, op: Operator) -> int:
    kd, kh, kw, out_c, _ = _input(model, op, 1).shape  # filter [kd, kh, kw, out_c, in_c], input 2
    return _input(model, op, 2).elements * kd * kh * kw * out_c


def _batch_matmul(model: TfliteModel, op: Operator) -> int:
    a = _input(model, op, 0)
    inner = a.shape[-2] if op.options.get("adjX", False) else a.shape[-1]
    return _output_elements(model, op) * inner


def _lstm(model: TfliteModel, op: Operator) -> int:
    """Per time step and batch row: the gates' input and recurrent products, peepholes, layer-norm weights, the
    cell's three elementwise products (forget * cell, input * candidate, output * tanh(cell)) and the
    projection. Inputs: 1-4 input weights (1 absent in CIFG), 5-8 recurrent weights, 9-11 peepholes,
    16 projection, 20-23 layer-norm coefficients."""
    input_to_output = _input(model, op, 4)  # [n_cell, n_input]
    recurrent_to_output = _input(model, op, 8)  # [n_cell, n_output]
    n_cell, n_input = input_to_output.shape
    n_output = recurrent_to_output.shape[1]
    gates = 4 if _input(model, op, 1) is not None else 3
    per_step = gates * n_cell * (n_input + n_output) + 3 * n_cell
    per_step += n_cell * sum(_input(model, op, p) is not None for p in (9, 10, 11, 20, 21, 22, 23))
    if _input(model, op, 16) is not None:
        per_step += n_output * n_cell
    out = model.tensors[op.outputs[0]]  # [..., n_output]: one row per time step and batch row
    return out.elements // max(out.shape[-1], 1) * per_step


def _svdf(model: TfliteModel, op: Operator) -> int:
    """Per batch row: the feature projection (num_filters x input_size) and the time filter over the memory
    (num_filters x memory_size)."""
    num_filters, input_size = _input(model, op, 1).shape
    memory_size = _input(model, op, 2).shape[1]
    batch = _input(model, op, 0).shape[0]
    return batch * num_filters * (input_size + memory_size)


def _rnn(model: TfliteModel, op: Operator) -> int:
    units, input_size = _input(model, op, 1).shape  # weights [units, input], recurrent weights [units, units]
    out = model.tensors[op.outputs[0]]
    return out.elements // max(out.shape[-1], 1) * units * (input_size + units)


def _per_output_element(model: TfliteModel, op: Operator) -> int:
    return _output_elements(model, op)


def _sum_of_squares(model: TfliteModel, op: Operator) -> int:
    return _input(model, op, 0).elements


MAC_COUNTERS: dict[str, Callable[[TfliteModel, Operator], int]] = {
    "CONV_2D": _conv_2d, "DEPTHWISE_CONV_2D": _depthwise_conv_2d, "FULLY_CONNECTED": _fully_connected,
    "TRANSPOSE_CONV": _transpose_conv, "CONV_3D": _conv_3d, "CONV_3D_TRANSPOSE": _conv_3d_transpose,
    "BATCH_MATMUL": _batch_matmul, "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm, "LSTM": _lstm, "SVDF": _svdf,
    "UNIDIRECTIONAL_SEQUENCE_RNN": _rnn, "RNN": _rnn,
    "MUL": _per_output_element, "SQUARE": _per_output_element, "SQUARED_DIFFERENCE": _per_output_element,
    "PRELU": _per_output_element, "L2_NORMALIZATION": _sum_of_squares,
}

# Ops whose definition has no multiply-accumulate (additions, divisions, pooling, reductions, non-linear
# activations, comparisons, conversions, data movement): 0 MACs by definition.
NO_MAC_OPS = frozenset("""
    ADD SUB DIV NEG ABS ADD_N FLOOR_DIV FLOOR_MOD CUMSUM
    AVERAGE_POOL_2D MAX_POOL_2D L2_POOL_2D MEAN SUM REDUCE_MAX REDUCE_MIN REDUCE_PROD REDUCE_ANY REDUCE_ALL
    ARG_MAX ARG_MIN
    RELU RELU6 RELU_N1_TO_1 RELU_0_TO_1 LEAKY_RELU LOGISTIC TANH ELU GELU HARD_SWISH SOFTMAX LOG_SOFTMAX
    EXP LOG SQRT RSQRT SIN COS FLOOR CEIL ROUND SIGN POW
    MAXIMUM MINIMUM LESS LESS_EQUAL GREATER GREATER_EQUAL EQUAL NOT_EQUAL LOGICAL_AND LOGICAL_OR LOGICAL_NOT
    SELECT SELECT_V2 WHERE
    QUANTIZE DEQUANTIZE CAST FAKE_QUANT
    RESHAPE SQUEEZE EXPAND_DIMS SHAPE RANK PAD PADV2 MIRROR_PAD CONCATENATION SPLIT SPLIT_V SLICE STRIDED_SLICE
    TRANSPOSE GATHER GATHER_ND PACK UNPACK TILE BROADCAST_TO BROADCAST_ARGS FILL ZEROS_LIKE RANGE ONE_HOT
    DEPTH_TO_SPACE SPACE_TO_DEPTH BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND REVERSE_V2 EMBEDDING_LOOKUP
    RESIZE_NEAREST_NEIGHBOR DYNAMIC_UPDATE_SLICE SCATTER_ND
    VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE
""".split())


def op_macs(model: TfliteModel, op: Operator) -> int | None:
    """The op's MACs (see the module docstring), or None when tinydeploy does not know its arithmetic."""
    counter = MAC_COUNTERS.get(op.op)
    if counter is not None:
        if not op.outputs:
            return None
        return counter(model, op)  # the loader checked the operands it reads (OPERAND_RANKS)
    return 0 if op.op in NO_MAC_OPS else None


WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "CONV_3D_TRANSPOSE",
                "UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM", "SVDF", "UNIDIRECTIONAL_SEQUENCE_RNN", "RNN")


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


def total_macs(costs: list[OpCost]) -> int:
    """MACs of the ops whose MACs are known (see unknown_mac_ops for the others)."""
    return sum(c.macs for c in costs if c.macs is not None)


def unknown_mac_ops(costs: list[OpCost]) -> list[str]:
    """Distinct ops whose MACs tinydeploy does not know, in first-use order."""
    return list(dict.fromkeys(c.op for c in costs if c.macs is None))

