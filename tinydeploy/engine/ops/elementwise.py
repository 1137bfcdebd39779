"""ADD and MUL of two int8 or two int16 tensors (either may be a constant), NumPy broadcasting, fused activation.

int16 (zero points 0) uses the same arithmetic on 16-bit values, with ADD's headroom shift 15 instead of 20."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import MAX_DIMS, broadcast_strides, padded
from tinydeploy.engine.quant import DTYPE_RANGES, activation_range, quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, c_struct, lowering, same

ADD_LEFT_SHIFT = {"int8": 20, "int16": 15}  # headroom of ADD's common scale
KERNELS = {"int8": ("elementwise", "s8"), "int16": ("elementwise_s16", "s16")}


def _operands(ctx: LoweringContext):
    """The two inputs (of the op's type), the output, the td_broadcast initializer and the input the output may
    overwrite."""
    dtype = ctx.signature[1]
    first, second = ctx.input(0, (dtype,)), ctx.input(1, (dtype,))
    result = ctx.output(0, (dtype,))
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
    if dtype == "int16":
        for tensor in (first, second, result):
            if ctx.zero_point(tensor) != 0:
                raise ctx.fail(f"int16 tensor {tensor.name} has zero point {ctx.zero_point(tensor)}; TFLite's "
                               "int16 scheme needs 0")
    shape = c_struct([("dims", padded(result.shape)), ("strides1", shapes[0]), ("strides2", shapes[1])])
    # The output may overwrite an input of its own shape that dies here (each element is read first).
    in_place = next((t.index for t in (first, second) if not t.is_constant and t.shape == result.shape), None)
    return first, second, result, shape, in_place


def add_like_params(ctx: LoweringContext, first, second, result, shape: str, multipliers: list[float]) -> str:
    """td_add_params (also SUB's): real input1, input2 and output multipliers -> Q31 pairs, offsets and clamp."""
    dtype = result.dtype
    (m1, s1), (m2, s2), (mo, so) = (quantize_multiplier(m) for m in multipliers)
    low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result), *DTYPE_RANGES[dtype])
    return ctx.constants.struct(f"op{ctx.op.index}_params", "td_add_params", [
        ("shape", shape), ("input1_offset", -ctx.zero_point(first)), ("input2_offset", -ctx.zero_point(second)),
        ("left_shift", ADD_LEFT_SHIFT[dtype]), ("input1_multiplier", m1), ("input1_shift", s1),
        ("input2_multiplier", m2), ("input2_shift", s2), ("output_multiplier", mo), ("output_shift", so),
        ("output_offset", ctx.zero_point(result)), ("activation_min", low), ("activation_max", high),
    ], f"op {ctx.op.index}: {ctx.op.op} {dtype} {ctx.op.activation}")


@lowering("ADD", kernel="elementwise", dtypes=same("int8", "int16"))
def lower_add(ctx: LoweringContext):
    first, second, result, shape, in_place = _operands(ctx)
    scale1, scale2, scale_out = (float(ctx.scale(t)) for t in (first, second, result))
    twice_max = 2.0 * max(scale1, scale2)  # TFLite's ADD rescales in double precision
    params = add_like_params(ctx, first, second, result, shape, [
        scale1 / twice_max, scale2 / twice_max, twice_max / ((1 << ADD_LEFT_SHIFT[result.dtype]) * scale_out)])
    kernel, suffix = KERNELS[result.dtype]
    return ctx.lowered(f"td_add_{suffix}", (params, ctx.operand(first), ctx.operand(second), ctx.ref(result)),
                       in_place_of=in_place, kernel=kernel)


@lowering("MUL", kernel="elementwise", dtypes=same("int8", "int16"))
def lower_mul(ctx: LoweringContext):
    first, second, result, shape, in_place = _operands(ctx)
    multiplier, shift = quantize_multiplier(float(ctx.scale(first)) * float(ctx.scale(second))
                                            / float(ctx.scale(result)))
    low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result),
                                 *DTYPE_RANGES[result.dtype])
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_mul_params", [
        ("shape", shape), ("input1_offset", -ctx.zero_point(first)), ("input2_offset", -ctx.zero_point(second)),
        ("output_multiplier", multiplier), ("output_shift", shift), ("output_offset", ctx.zero_point(result)),
        ("activation_min", low), ("activation_max", high),
    ], f"op {ctx.op.index}: MUL {result.dtype} {ctx.op.activation}")
    kernel, suffix = KERNELS[result.dtype]
    return ctx.lowered(f"td_mul_{suffix}", (params, ctx.operand(first), ctx.operand(second), ctx.ref(result)),
                       in_place_of=in_place, kernel=kernel)
