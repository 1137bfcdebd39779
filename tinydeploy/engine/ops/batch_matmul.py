"""BATCH_MATMUL of two int8 or two int16 tensors (either may be a constant), as TFLM computes it: ranks 2 to 5,
batch dimensions broadcast, adj_x / adj_y (operands stored transposed) read through strides instead of TFLM's
transposed copies, one per-tensor multiplier (float32 product of the input scales over the output scale), no fused
activation."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.quant import quantize_multiplier, quantize_multiplier_wide
from tinydeploy.engine.registry import LoweringContext, lowering, same
from tinydeploy.engine.ops.shapes import strides

RANK = 5  # TFLM extends both operands to 5 dimensions: 3 batch dimensions, rows, columns
LIMITS = {"int8": (-128, 127), "int16": (-32768, 32767)}


def _extended(shape) -> list[int]:
    return [1] * (RANK - len(shape)) + [int(d) for d in shape]


@lowering("BATCH_MATMUL", kernel="batch_matmul", dtypes=same("int8", "int16"))
def lower_batch_matmul(ctx: LoweringContext):
    op = ctx.op
    lhs = ctx.input(0, ("int8", "int16"))
    rhs = ctx.input(1, (lhs.dtype,))
    result = ctx.output(0, (lhs.dtype,))
    if lhs.is_constant and rhs.is_constant:
        raise ctx.fail("both operands are constant")
    if not (2 <= len(lhs.shape) <= RANK and 2 <= len(rhs.shape) <= RANK):
        raise ctx.fail(f"operand ranks {len(lhs.shape)} and {len(rhs.shape)}; TFLM takes ranks 2 to {RANK}")
    adj_x, adj_y = bool(op.options.get("adjX", False)), bool(op.options.get("adjY", False))
    left, right = _extended(lhs.shape), _extended(rhs.shape)
    rows, depth = (left[4], left[3]) if adj_x else (left[3], left[4])
    rhs_depth, cols = (right[4], right[3]) if adj_y else (right[3], right[4])
    if depth != rhs_depth:
        raise ctx.fail(f"inner dimensions differ: {list(lhs.shape)} x {list(rhs.shape)} (adj_x {adj_x}, adj_y {adj_y})")
    batch = []
    for a, b in zip(left[:3], right[:3]):
        if a != b and 1 not in (a, b):
            raise ctx.fail(f"batch dimensions of {list(lhs.shape)} and {list(rhs.shape)} do not broadcast")
        batch.append(max(a, b))
    if result.elements != int(np.prod(batch)) * rows * cols or tuple(result.shape[-2:]) != (rows, cols):
        raise ctx.fail(f"output shape {list(result.shape)} does not follow {list(lhs.shape)} x {list(rhs.shape)}")
    wide = lhs.dtype == "int16"
    zero_points = [ctx.zero_point(t) for t in (lhs, rhs, result)]
    if wide and any(zero_points):
        raise ctx.fail("int16 operands and output must be symmetric (zero point 0)")
    for tensor in (lhs, rhs):
        if tensor.quant is None or len(tensor.quant.scales) != 1:
            raise ctx.fail(f"operand {tensor.name} is not quantized per tensor")
    # TFLM: the scales' product in float32, divided by the output scale in double.
    product = float(np.float32(lhs.quant.scales[0]) * np.float32(rhs.quant.scales[0]))
    multiplier, shift = (quantize_multiplier_wide if wide else quantize_multiplier)(product / float(ctx.scale(result)))
    left_strides, right_strides = strides(left), strides(right)

    def batch_strides(dims, dim_strides):
        return [dim_strides[i] if dims[i] != 1 else 0 for i in range(3)]

    low, high = LIMITS[lhs.dtype]
    params = ctx.constants.struct(f"op{op.index}_params", "td_batch_matmul_params", [
        ("batch_dims", batch), ("lhs_batch_strides", batch_strides(left, left_strides)),
        ("rhs_batch_strides", batch_strides(right, right_strides)), ("rows", rows), ("cols", cols), ("depth", depth),
        ("lhs_row_stride", 1 if adj_x else depth), ("lhs_depth_stride", rows if adj_x else 1),
        ("rhs_depth_stride", 1 if adj_y else cols), ("rhs_col_stride", depth if adj_y else 1),
        ("lhs_offset", -zero_points[0]), ("rhs_offset", -zero_points[1]), ("output_offset", zero_points[2]),
        ("output_multiplier", multiplier), ("output_shift", shift), ("activation_min", low), ("activation_max", high),
    ], f"op {op.index}: BATCH_MATMUL {list(lhs.shape)}{'^T' if adj_x else ''} x {list(rhs.shape)}"
       f"{'^T' if adj_y else ''}")
    ctype = "int16_t" if wide else "int8_t"

    def operand(tensor):
        return ctx.constants.tensor(tensor, ctype) if tensor.is_constant else ctx.ref(tensor)

    return ctx.lowered("td_batch_matmul_s16" if wide else "td_batch_matmul_s8",
                       (params, operand(lhs), operand(rhs), ctx.ref(result)),
                       variant="int16x16" if wide else "reference")
