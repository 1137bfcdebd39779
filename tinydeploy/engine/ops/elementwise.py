"""ADD and MUL of two int8 or two int16 tensors (either may be a constant), NumPy broadcasting, fused activation.

int16 (zero points 0) uses the same arithmetic on 16-bit values, with ADD's headroom shift 15 instead of 20."""

from __future__ import annotations

from tinydeploy.engine.ops.common import symmetric
from tinydeploy.engine.ops.shapes import MAX_DIMS, broadcast_strides, padded
from tinydeploy.engine.quant import DTYPE_RANGES, activation_range, quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, ScratchRef, c_struct, lowering, same

ADD_LEFT_SHIFT = {"int8": 20, "int16": 15}  # headroom of ADD's common scale
KERNELS = {"int8": ("elementwise", "s8"), "int16": ("elementwise", "s16")}


def _operands(ctx: LoweringContext):
    """The two inputs (of the op's type), the output, the td_broadcast initializer and the input the output may
    overwrite; int16 tensors symmetric, as TFLite's int16 ADD, SUB and MUL need."""
    first, second, result, shape, in_place = broadcast_operands(ctx)
    if result.dtype == "int16":
        symmetric(ctx, first, second, result)
    return first, second, result, c_struct(shape), in_place


def broadcast_operands(ctx: LoweringContext):
    """The two inputs (of the op's type, not both constant), the output, the td_broadcast fields and the input the
    output may overwrite."""
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
    shape = [("dims", padded(result.shape)), ("strides1", shapes[0]), ("strides2", shapes[1])]
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
    multipliers = [scale1 / twice_max, scale2 / twice_max,
                   twice_max / ((1 << ADD_LEFT_SHIFT[result.dtype]) * scale_out)]
    if result.dtype == "int8" and ctx.fast_kernels and first.shape == second.shape == result.shape and \
            ADD_FAST_SCRATCH_BYTES <= ctx.scratch_limit:
        return _lower_add_fast(ctx, first, second, result, in_place, *(quantize_multiplier(m) for m in multipliers))
    params = add_like_params(ctx, first, second, result, shape, multipliers)
    kernel, suffix = KERNELS[result.dtype]
    return ctx.lowered(f"td_add_{suffix}", (params, ctx.operand(first), ctx.operand(second), ctx.ref(result)),
                       in_place_of=in_place, kernel=kernel)


ADD_FAST_SCRATCH_BYTES = 2048  # TD_ADD_FAST_SCRATCH_BYTES


def _lower_add_fast(ctx: LoweringContext, first, second, result, in_place, rescale1, rescale2, rescale_out):
    """elementwise_fast.c (int8): same-shape inputs, each input's rescaling tabulated per call."""
    from tinydeploy.engine.ops.common import ChannelRequant, folding_proven, requantize

    left_shift = ADD_LEFT_SHIFT["int8"]
    clamp = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result))
    offsets = (-ctx.zero_point(first), -ctx.zero_point(second))
    # The widest sum of the two rescaled inputs, from every value each can take (what the tables will hold).
    widest = sum(max(abs(requantize((v + offset) << left_shift, *rescale)) for v in range(-128, 128))
                 for offset, rescale in zip(offsets, (rescale1, rescale2)))
    multiplier, shift = rescale_out
    output = ChannelRequant(0, multiplier, max(shift, 0) + 1, max(-shift, 0))
    # folding_proven bounds |bias| + widest_input * sum|w|: here the bias stands for the widest sum.
    folded = folding_proven([ChannelRequant(widest, multiplier, output.up, output.right)], [0], 0,
                            ctx.zero_point(result), clamp)
    index = ctx.op.index
    params = ctx.constants.struct(f"op{index}_params", "td_add_fast_params", [
        ("count", result.elements), ("input1_offset", offsets[0]), ("input2_offset", offsets[1]),
        ("left_shift", left_shift), ("input1_multiplier", rescale1[0]), ("input1_shift", rescale1[1]),
        ("input2_multiplier", rescale2[0]), ("input2_shift", rescale2[1]),
        ("quant", c_struct([("input_offset", 0), ("output_offset", ctx.zero_point(result)),
                            ("activation_min", clamp[0]), ("activation_max", clamp[1]),
                            ("folded", int(folded))])),
        ("output_shifts", output.shifts_word()), ("output_multiplier", multiplier),
        ("output_round", output.round(ctx.zero_point(result))),
    ], f"op {index}: ADD {ctx.op.activation}, fast")
    return ctx.lowered("td_add_fast_s8", (params, ctx.operand(first), ctx.operand(second),
                                          ScratchRef(optional=True), ctx.ref(result)),
                       in_place_of=in_place, kernel="elementwise_fast",
                       variant="tabulated inputs" + ("" if folded else ", exact requantization in C"),
                       scratch_request=ADD_FAST_SCRATCH_BYTES)


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
