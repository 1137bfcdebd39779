"""ADD and MUL of two int8 tensors (either may be a constant), NumPy broadcasting, fused activation."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import MAX_DIMS, broadcast_strides, padded
from tinydeploy.engine.quant import activation_range, quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, c_struct, lowering

ADD_LEFT_SHIFT = 20  # headroom of the int8 ADD's common scale


def _operands(ctx: LoweringContext):
    first, second = ctx.input(0), ctx.input(1)
    result = ctx.output(0)
    if max(len(first.shape), len(second.shape), len(result.shape)) > MAX_DIMS:
        raise ctx.fail(f"more than {MAX_DIMS} dimensions")
    shapes = []
    for tensor in (first, second):
        tensor_strides = broadcast_strides(tensor.shape, result.shape)
        if tensor_strides is None:
            raise ctx.fail(f"input shape {list(tensor.shape)} does not broadcast to {list(result.shape)}")
        shapes.append(tensor_strides)
    if first.is_constant and second.is_constant:
        raise ctx.fail("both inputs are constant")
    shape = c_struct([("dims", padded(result.shape)), ("strides1", shapes[0]), ("strides2", shapes[1])])
    # The output may overwrite an input of its own shape that dies here (each element is read first).
    in_place = next((t.index for t in (first, second) if not t.is_constant and t.shape == result.shape), None)
    return first, second, result, shape, in_place


def _operand_arg(ctx: LoweringContext, tensor):
    return ctx.constants.tensor(tensor, "int8_t") if tensor.is_constant else ctx.ref(tensor)


@lowering("ADD", kernel="elementwise")
def lower_add(ctx: LoweringContext):
    first, second, result, shape, in_place = _operands(ctx)
    scale1, scale2, scale_out = (float(ctx.scale(t)) for t in (first, second, result))
    twice_max = 2.0 * max(scale1, scale2)
    multiplier1, shift1 = quantize_multiplier(scale1 / twice_max)
    multiplier2, shift2 = quantize_multiplier(scale2 / twice_max)
    multiplier_out, shift_out = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * scale_out))
    low, high = activation_range(ctx.op.activation, scale_out, ctx.zero_point(result))
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_add_params", [
        ("shape", shape), ("input1_offset", -ctx.zero_point(first)), ("input2_offset", -ctx.zero_point(second)),
        ("left_shift", ADD_LEFT_SHIFT), ("input1_multiplier", multiplier1), ("input1_shift", shift1),
        ("input2_multiplier", multiplier2), ("input2_shift", shift2), ("output_multiplier", multiplier_out),
        ("output_shift", shift_out), ("output_offset", ctx.zero_point(result)), ("activation_min", low),
        ("activation_max", high),
    ], f"op {ctx.op.index}: ADD {ctx.op.activation}")
    return ctx.lowered("td_add_s8", (params, _operand_arg(ctx, first), _operand_arg(ctx, second), ctx.ref(result)),
                       in_place_of=in_place)


@lowering("MUL", kernel="elementwise")
def lower_mul(ctx: LoweringContext):
    first, second, result, shape, in_place = _operands(ctx)
    multiplier, shift = quantize_multiplier(float(ctx.scale(first)) * float(ctx.scale(second))
                                            / float(ctx.scale(result)))
    low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result))
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_mul_params", [
        ("shape", shape), ("input1_offset", -ctx.zero_point(first)), ("input2_offset", -ctx.zero_point(second)),
        ("output_multiplier", multiplier), ("output_shift", shift), ("output_offset", ctx.zero_point(result)),
        ("activation_min", low), ("activation_max", high),
    ], f"op {ctx.op.index}: MUL {ctx.op.activation}")
    return ctx.lowered("td_mul_s8", (params, _operand_arg(ctx, first), _operand_arg(ctx, second), ctx.ref(result)),
                       in_place_of=in_place)
